/** A required environment variable: startup fails without it (there is no default Redis to fall back to). */
export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (this app never falls back to a default Redis)`);
  return value;
}
