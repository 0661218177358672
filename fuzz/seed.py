#!/usr/bin/env python3
"""Builds the fuzz seed corpora from LUKS2 (and LUKS1) images written by cryptsetup and by
cryptpilot.

usage: seed.py CORPUS_DIR IMAGE...
"""
import os
import re
import sys

HDR = 16384


def main():
    out, images = sys.argv[1], sys.argv[2:]
    for t in ("header", "metadata", "unlock", "dm_table", "token", "superblocks", "volume_toml", "http_response", "luks1"):
        os.makedirs(os.path.join(out, t), exist_ok=True)
    for i, path in enumerate(images):
        data = open(path, "rb").read()
        if data[6:8] == b"\0\1":
            # LUKS1: the header and the first keyslots' material (the target pads with zeros).
            write(out, "luks1", i, data[:200000])
            continue
        hdr = int.from_bytes(data[8:16], "big")
        json = data[4096:hdr].split(b"\0", 1)[0]
        area = data[2 * hdr : 2 * hdr + 131072]
        write(out, "header", i, data[: 2 * hdr + 4096])
        write(out, "metadata", i, json)
        # Cheap digests keep the unlock target fast; the digest no longer matches, so the
        # fuzzer still runs the KDF, area decryption and AF merge on every input.
        cheap = re.sub(rb'("digests":\{.*"iterations":)\d+', rb"\g<1>1000", json)
        write(out, "unlock", i, len(cheap).to_bytes(2, "little") + cheap + area)
    tables = [
        b"aes-xts-plain64 :64:logon:cryptsetup:0123-d0 0 254:0 32768 1 sector_size:4096",
        b"capi:authenc(hmac(sha256),xts(aes))-plain64 :96:logon:cryptsetup:u-d0 0 253:1 0 1 integrity:32:aead",
        b"254:16 32768 32 J 6 journal_sectors:968 interleave_sectors:32768 buffer_sectors:128 journal_watermark:50 commit_time:10000 fix_padding",
        b"1 254:0 254:16 4096 4096 25600 1 sha256 00ff 1234 2 ignore_zero_blocks panic_on_corruption",
        b"254:0 2048",
    ]
    for i, t in enumerate(tables):
        write(out, "dm_table", i, t)
    tokens = [
        b'{"type":"luks2-keyring","keyslots":["0"],"key_description":"k"}',
        b'{"type":"cryptpilot","keyslots":[],"nested":{"a":[1,2,{"b":null}]}}',
    ]
    for i, t in enumerate(tokens):
        write(out, "token", i, t)
    volumes = [
        b'volume = "data0"\ndev = "/dev/nvme1n1p1"\nauto_open = true\nmakefs = "ext4"\nintegrity = true\n\n[encrypt.otp]\n',
        b'volume = "d"\ndev = "/dev/vdb"\n[encrypt.exec]\ncommand = "cat"\nargs = ["/run/key", "-"]\n',
        b'volume = "k"\ndev = "/dev/vdc"\nmakefs = "xfs"\n[encrypt.kbs]\nkbs_url = "https://kbs:8080"\nkey_uri = "kbs:///default/key/data"\nkbs_root_cert = """-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"""\n',
        b'volume = "m"\ndev = "/dev/vdd"\nmakefs = "swap"\n[encrypt.kms]\nkms_instance_id = "kst-1"\nsecret_name = "s"\nclient_key = "{}"\nclient_key_password = "p"\nkms_cert_pem = "x"\n',
    ]
    for i, t in enumerate(volumes):
        write(out, "volume_toml", i, t)
    # dm-integrity superblocks as cryptsetup/the kernel write them (see integrity's tests).
    sbs = [
        bytes.fromhex("696e74656772740004" "0f" "2000" "2e000000" "0000070000000000" "08000000" "00" "0f" "0000") + bytes(480),
        bytes.fromhex("696e74656772740004" "0f" "2000" "0f000000" "8061070000000000" "08000000" "03" "0c" "0000") + bytes(480),
    ]
    for i, t in enumerate(sbs):
        write(out, "superblocks", i, t)
    responses = [
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSet-Cookie: kbs-session-id=1; Path=/\r\nContent-Length: 17\r\n\r\n{"nonce":"abc"}\r\n',
        b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nerror\r\n3;x\r\n!!!\r\n0\r\n\r\n",
        b"HTTP/1.0 500 Internal\r\n\r\nbody to the end",
    ]
    for i, t in enumerate(responses):
        write(out, "http_response", i, t)


def write(out, target, i, data):
    with open(os.path.join(out, target, "seed-%03d" % i), "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
