#!/usr/bin/env python3
"""Build fuzz/corpus/<target>/ from fuzz/seeds/ (captured by gen-seeds.sh) plus
hand-built hostile packets. Deterministic; safe to re-run (it only adds files)."""
import hashlib, os, struct, sys

here = os.path.dirname(os.path.abspath(__file__))
seeds = os.path.join(here, 'seeds')
corpus = os.path.join(here, 'corpus')
MAC = bytes([2, 0, 0, 0, 0, 1])
DUID = bytes.fromhex('000100012e2d01bd525400123456')
SERVER = bytes([10, 78, 0, 1])


def put(target, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), 'wb') as f:
        f.write(data)


def read_dir(sub):
    d = os.path.join(seeds, sub)
    if not os.path.isdir(d):
        return []
    return [open(os.path.join(d, n), 'rb').read() for n in sorted(os.listdir(d))]


def opt(code, v):
    return bytes([code, len(v)]) + v


def v4(kind=5, yiaddr=(10, 78, 0, 77), opts=b'', file=b'', sname=b'', cookie=True, mt=True):
    m = bytearray(240)
    m[0], m[1], m[2] = 2, 1, 6
    m[16:20] = bytes(yiaddr)
    m[28:34] = MAC
    m[44:44 + len(sname)] = sname
    m[108:108 + len(file)] = file
    if cookie:
        m[236:240] = bytes([99, 130, 83, 99])
    body = (opt(53, bytes([kind])) if mt else b'') + opt(54, SERVER)
    if kind in (2, 5):
        body += opt(51, struct.pack('>I', 3600)) + opt(1, bytes([255, 255, 255, 0]))
    return bytes(m) + body + opts + b'\xff'


hostile4 = [
    v4(),
    v4(kind=2),
    v4(kind=6),
    v4(opts=b'\x06\x40' + SERVER),                     # length past the end
    v4(opts=opt(1, b'\xff\xff\xff')),                 # fixed-size option wrong length
    v4(opts=opt(52, b'\x03'), file=opt(52, b'\x01') + b'\xff', sname=b'\xff'),
    v4(opts=opt(52, b'\x07')),
    v4(opts=opt(52, b'\x03'), file=opt(6, SERVER) * 10 + b'\xff', sname=opt(15, b'x.test') + b'\xff'),
    v4(yiaddr=(255, 255, 255, 255)),
    v4(yiaddr=(10, 78, 0, 1)),
    v4(opts=opt(1, bytes([255, 0, 255, 0]))),
    v4(opts=opt(51, b'\0\0\0\0')[0:0] + opt(58, struct.pack('>I', 0xfffffffe)) + opt(59, b'\0\0\0\1')),
    v4(opts=opt(6, SERVER * 60)[:2] + SERVER * 60),
    v4(opts=opt(15, b'a.test\nnameserver 6.6.6.6') + opt(12, b'$(reboot);`id`')),
    v4(opts=opt(119, b'\x03eng\x07example\x03com\x00\xc0\x04' + b'\xc0\x00')),
    v4(opts=opt(121, bytes([1, 0, 10, 78, 0, 1, 1, 128, 10, 78, 0, 1]))),
    v4(opts=opt(121, bytes([33, 0, 0, 0, 0]))),
    v4(opts=opt(26, b'\x00\x10') + opt(3, SERVER * 3) + opt(42, SERVER)),
    v4(kind=9),
    v4(mt=False),
    v4(cookie=False),
    v4(opts=opt(61, b'\xff\0\0\0\1' + DUID)),
    v4(opts=opt(61, b'\x01' + MAC)),
    # Issue 13: a yiaddr that is the subnet's broadcast or network address, a lease
    # without a subnet mask, an options field whose last option swallows END, and
    # overloaded fields without END.
    v4(yiaddr=(10, 78, 0, 255)),
    v4(yiaddr=(10, 78, 0, 0)),
    v4().replace(opt(1, bytes([255, 255, 255, 0])), b''),
    v4().replace(opt(1, bytes([255, 255, 255, 0])), b'')[:-1] + opt(15, b'x.test\xff')[:-1] + b'\xff',
    v4(opts=opt(52, b'\x01'), file=opt(15, b'a' * 126)),
    v4(opts=opt(52, b'\x02'), sname=opt(12, b'h' * 62)),
]

captured4 = read_dir('dhcp4')
for pkt in captured4 + hostile4:
    for state in range(8):
        put('dhcp4_engine', bytes([state | 0x08]) + pkt)
    put('dhcp4_engine', bytes([0x3b]) + pkt)   # BOUND-ish with timers run
    put('dhcp4_engine', bytes([0x00]) + pkt)


def tlv(code, v):
    return struct.pack('>HH', code, len(v)) + v


def v6(kind, body):
    return bytes([kind, 0, 0, 0]) + tlv(1, DUID) + tlv(2, bytes([0, 3, 0, 1, 2, 0, 0, 0, 0, 0xfe])) + body


ipv6 = bytes.fromhex('fd780000000000000000000000000077')
iaaddr = tlv(5, ipv6 + struct.pack('>II', 1800, 3600))
ia_na = tlv(3, struct.pack('>III', 1, 1000, 1600) + iaaddr)
ia_pd = tlv(25, struct.pack('>III', 2, 1000, 1600) + tlv(26, struct.pack('>IIB', 1800, 3600, 56) + bytes.fromhex('fd780001000000000000000000000000')))
hostile6 = [
    v6(2, ia_na + tlv(7, b'\xff')),
    v6(7, ia_na + ia_pd + tlv(23, ipv6) + tlv(24, b'\x07example\x04test\x00')),
    v6(7, ia_na + tlv(14, b'')),
    v6(7, tlv(13, b'\x00\x04not on link')),
    v6(7, tlv(3, struct.pack('>III', 1, 0, 0) + tlv(13, b'\x00\x03'))),
    v6(7, tlv(3, struct.pack('>III', 1, 5000, 100) + tlv(5, ipv6 + struct.pack('>II', 0, 0)))),
    v6(7, tlv(32, struct.pack('>I', 1)) + tlv(82, struct.pack('>I', 0xffffffff))),
    v6(10, tlv(19, b'\x05')),
    v6(7, tlv(24, b'\xc0\x00') + tlv(23, ipv6[:15])),
    v6(7, tlv(3, b'\x00\x00\x00\x01')),
    # Issue 13: fits, but malformed: repeated once-only options, two IAs with one
    # IAID, two status codes in an IA, an empty DNS option, trailing bytes.
    v6(7, ia_na + tlv(13, b'\x00\x00') + tlv(13, b'\x00\x02')),
    v6(7, ia_na + ia_na),
    v6(7, tlv(3, struct.pack('>III', 1, 0, 0) + tlv(13, b'\x00\x00') + tlv(13, b'\x00\x02'))),
    v6(7, ia_na + tlv(23, b'')),
    v6(7, ia_na + tlv(23, ipv6) + tlv(23, ipv6)),
    v6(7, ia_na + b'\x00'),
    v6(7, tlv(3, struct.pack('>III', 1, 0, 0) + tlv(13, b'\x00\x02'))),
]
for pkt in read_dir('dhcp6') + hostile6:
    for state in range(12):
        put('dhcp6_engine', bytes([state | 0x10]) + pkt)
    put('dhcp6_engine', bytes([0x73]) + pkt)

for pkt in read_dir('lease'):
    put('lease_load', pkt)
put('lease_load', b'{"format":"netbond-lease-v1","ifname":"c0","lease":{}}')

conf = os.path.join(here, '..', 'config', 'netbond.toml')
if os.path.exists(conf):
    put('config_parse', open(conf, 'rb').read())
for t in [
    b'interface = "eth0"\n[dhcp4]\ninitial_interval = 1e308\nmax_interval = -1.0\n',
    b'[identity]\nduid = "00:01"\niaid = "0xffffffff"\n[dhcp6]\nmode = "stateful"\niaid_pd = "1"\n',
    b'[dhcp4]\nclient_id = "ff:00"\ntimeout = 18446744073709551615\nretry = 0\n',
    b'[bond]\nname = "bond0"\nslaves = ["eth0", "wlan0"]\n',
]:
    put('config_parse', t)

for t in [
    b'<3>CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed [id=0 id_str=home]',
    b'<3>CTRL-EVENT-DISCONNECTED bssid=02:00:00:00:01:00 reason=3 locally_generated=1',
    b'<3>CTRL-EVENT-SSID-TEMP-DISABLED id=0 ssid="home" auth_failures=1 duration=10 reason=WRONG_KEY',
    b'<3>CTRL-EVENT-TERMINATING',
    b'<3>WPA: 4-Way Handshake failed - pre-shared key may be incorrect',
    b'<2>CTRL-EVENT-SCAN-RESULTS ',
    b'bssid=02:00:00:00:01:00\nssid=home\nwpa_state=COMPLETED\n',
    b'bssid / frequency / signal level / flags / ssid\n02:00:00:00:01:00\t2412\t-40\t[WPA2-PSK-CCMP][ESS]\thome\n',
    b'ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev\nnetwork={\n ssid="x"\n}\n',
]:
    put('wpa_event', t)

for t in sorted(os.listdir(corpus)):
    print(t, len(os.listdir(os.path.join(corpus, t))))
