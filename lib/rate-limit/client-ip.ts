import ipaddr from 'ipaddr.js';

/** The default IPv6 prefix length clients are grouped by: one customer's network is usually a whole /64. */
export const DEFAULT_IPV6_SUBNET = 64;

/**
 * The identity of a client address, parsed with ipaddr.js (the parser of Express's `proxy-addr`):
 * IPv4 in dotted decimal; IPv4-mapped IPv6 in any spelling (`::ffff:1.2.3.4`, `::ffff:102:304`,
 * `0:0:0:0:0:ffff:1.2.3.4`) as its IPv4 address; other IPv6 masked to its `/ipv6Subnet` network
 * (`2001:db8:1:2::/64`), so that a client cannot escape a limit by rotating addresses inside it.
 * `undefined` for anything else (legacy IPv4 forms such as `1.2.3` or `01.2.3.4` included: they would
 * give one address several spellings).
 *
 * @example
 * clientIdentity('::ffff:102:304'); // '1.2.3.4'
 * clientIdentity('2001:db8:1:2:3:4:5:6'); // '2001:db8:1:2::/64'
 * clientIdentity('unknown'); // undefined
 */
export function clientIdentity(ip: string, ipv6Subnet = DEFAULT_IPV6_SUBNET): string | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(ip)) return ipaddr.IPv4.parse(ip).toString();
  if (!ipaddr.IPv6.isValid(ip)) return undefined;
  const address = ipaddr.IPv6.parse(ip);
  if (address.isIPv4MappedAddress()) return address.toIPv4Address().toString();
  const bytes = address.toByteArray();
  for (let bit = ipv6Subnet; bit < 128; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
  return `${ipaddr.fromByteArray(bytes).toString()}/${ipv6Subnet}`;
}
