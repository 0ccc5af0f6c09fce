/** How many times servers ran a command, from their `INFO commandstats` (`function|load` for a subcommand). */
export function commandCalls(infos: readonly string[], command: string): number {
  const pattern = new RegExp(`^cmdstat_${command.replace(/\|/g, '\\|')}:calls=(\\d+)`, 'm');
  return infos.reduce((sum, info) => sum + Number(pattern.exec(info)?.[1] ?? 0), 0);
}
