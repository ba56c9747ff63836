"""Drive ftpfront with Python's ftplib.FTP_TLS (explicit TLS, PROT P).

usage: ftps_client.py HOST PORT USER PASSWORD SRC DOWNLOAD PARTIAL
Uploads SRC as py.bin, downloads it to DOWNLOAD, resumes PARTIAL (a prefix of SRC) with REST, lists the
directory (MLSD, NLST, LIST), sets and reads the modification time (MFMT, MDTM), renames and deletes.
Exits non-zero with a message on the first failure.
"""
import ftplib
import os
import ssl
import sys


def main():
    host, port, user, password, src, download, partial = sys.argv[1:8]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ftp = ftplib.FTP_TLS(context=ctx, timeout=60)
    ftp.connect(host, int(port))
    ftp.auth()
    ftp.login(user, password)
    ftp.prot_p()

    with open(src, "rb") as f:
        resp = ftp.storbinary("STOR py.bin", f, blocksize=1 << 20)
    check(resp.startswith("226"), "STOR reply " + resp)

    with open(download, "wb") as f:
        resp = ftp.retrbinary("RETR py.bin", f.write, blocksize=1 << 20)
    check(resp.startswith("226"), "RETR reply " + resp)

    offset = os.path.getsize(partial)
    with open(partial, "ab") as f:
        resp = ftp.retrbinary("RETR py.bin", f.write, blocksize=1 << 20, rest=offset)
    check(resp.startswith("226"), "REST+RETR reply " + resp)

    size = ftp.size("py.bin")
    check(size == os.path.getsize(src), "SIZE %r" % size)

    ftp.mkd("pydir")
    facts = dict(ftp.mlsd("/"))
    check(facts.get("py.bin", {}).get("type") == "file", "MLSD py.bin facts %r" % facts.get("py.bin"))
    check(int(facts["py.bin"]["size"]) == size, "MLSD size %r" % facts["py.bin"])
    check(facts.get("pydir", {}).get("type") == "dir", "MLSD pydir facts %r" % facts.get("pydir"))
    names = ftp.nlst()
    check("py.bin" in names and "pydir" in names, "NLST %r" % names)
    lines = []
    ftp.retrlines("LIST", lines.append)
    check(any(l.endswith(" py.bin") and l.startswith("-") for l in lines), "LIST %r" % lines)
    check(any(l.endswith(" pydir") and l.startswith("d") for l in lines), "LIST %r" % lines)

    resp = ftp.sendcmd("MFMT 20210304050607 py.bin")
    check(resp.startswith("213"), "MFMT reply " + resp)
    resp = ftp.sendcmd("MDTM py.bin")
    check(resp == "213 20210304050607", "MDTM reply " + resp)

    ftp.rename("py.bin", "pydir/py2.bin")
    check(any(n.endswith("py2.bin") for n in ftp.nlst("pydir")), "rename target missing")
    ftp.delete("pydir/py2.bin")
    ftp.rmd("pydir")
    check("pydir" not in ftp.nlst(), "rmd left pydir")
    ftp.quit()
    print("python ftplib OK")


def check(ok, what):
    if not ok:
        sys.exit("check failed: " + what)


if __name__ == "__main__":
    main()
