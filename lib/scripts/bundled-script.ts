import type { ScriptSource, SourceLine } from './script-source';

/**
 * A bundled script as the package ships it (lib/scripts/bundled-scripts.generated.ts): its body with
 * includes resolved, its SHA1, and where its lines came from, as runs `[file under the package root,
 * first line, number of lines]`.
 */
export interface BundledScript {
  readonly sha: string;
  readonly body: string;
  readonly origins: ReadonlyArray<readonly [string, number, number]>;
}

/** The script source of a bundled script (origins expanded to one entry per body line). */
export function bundledSource(script: BundledScript): ScriptSource {
  const origins: SourceLine[] = [];
  for (const [file, first, count] of script.origins) for (let i = 0; i < count; i++) origins.push({ file, line: first + i });
  return { body: script.body, sha: script.sha, origins };
}
