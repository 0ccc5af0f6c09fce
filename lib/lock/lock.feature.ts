import type { RedisLuaFeature } from '../module/feature';
import { inputSite } from '../core/validation';
import { LockInputError } from './lock.errors';
import { validateLockOptions, type LockModuleOptions } from './lock.options';
import { LockService } from './lock.service';

/** Locks as a feature of the module: `LockService` and the `lock` section of the module options. */
export const lockFeature: RedisLuaFeature = {
  name: 'locks',
  options: { key: 'lock', validate: (section) => validateLockOptions(section as LockModuleOptions | undefined, MODULE_SITE) },
  providers: [LockService],
};

const MODULE_SITE = inputSite('RedisLuaModule.forRoot({ lock })', LockInputError);
