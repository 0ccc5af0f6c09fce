import { Catch, HttpStatus, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { CacheInputError, CounterInputError, LeaderboardInputError } from 'nest-redis-lua';

type InputError = LeaderboardInputError | CounterInputError | CacheInputError;

/**
 * The library refuses bad input (NaN, Infinity, an empty or over-long member, ...) with typed errors
 * before writing anything; this filter answers them with 400 instead of 500.
 */
@Catch(LeaderboardInputError, CounterInputError, CacheInputError)
export class InputErrorFilter implements ExceptionFilter<InputError> {
  catch(error: InputError, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<{ status(code: number): { json(body: unknown): void } }>();
    response.status(HttpStatus.BAD_REQUEST).json({
      statusCode: HttpStatus.BAD_REQUEST,
      error: 'Bad Request',
      message: error.message,
      field: error.field,
    });
  }
}
