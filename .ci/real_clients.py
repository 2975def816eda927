#!/usr/bin/env python3
"""Python's smtplib, imaplib and poplib against `demo -serve`.

usage: real_clients.py smtp|imap|pop3 HOST PORT CAFILE

Each client checks the capabilities before TLS (STARTTLS/STLS offered, no
plaintext password), upgrades with starttls()/stls() verifying the server
certificate against CAFILE, checks the capabilities again inside TLS
(STARTTLS/STLS gone, authentication offered), logs in as demo/demo and does
a small action. Exit status 0 on success; an assertion or error otherwise.
Called by .ci/real-clients.sh.
"""

import imaplib
import poplib
import smtplib
import ssl
import sys

TIMEOUT = 10
USER = PASSWORD = "demo"


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def run_smtp(host, port, ctx):
    s = smtplib.SMTP(host, port, timeout=TIMEOUT)
    try:
        s.ehlo()
        check(s.has_extn("starttls"), "STARTTLS advertised before TLS")
        check(not s.has_extn("auth"), "no AUTH before TLS")
        code, _ = s.mail("demo@localhost")
        check(code == 530, "MAIL before TLS refused with 530, got %d" % code)
        s.rset()
        s.starttls(context=ctx)
        s.ehlo()
        check(not s.has_extn("starttls"), "no STARTTLS after TLS")
        check("PLAIN" in s.esmtp_features.get("auth", "").upper().split(), "AUTH PLAIN after TLS")
        s.login(USER, PASSWORD)
        refused = s.sendmail(
            "demo@localhost",
            ["demo@localhost"],
            b"Subject: smtplib over STARTTLS\r\n\r\n.a line starting with a dot\r\nbye\r\n",
        )
        check(refused == {}, "all recipients accepted")
        return "sent a message"
    finally:
        s.quit()


def run_imap(host, port, ctx):
    m = imaplib.IMAP4(host, port, timeout=TIMEOUT)
    try:
        check("STARTTLS" in m.capabilities, "STARTTLS advertised before TLS")
        check("LOGINDISABLED" in m.capabilities, "LOGINDISABLED before TLS")
        m.starttls(ssl_context=ctx)
        check("STARTTLS" not in m.capabilities, "no STARTTLS after TLS")
        check("LOGINDISABLED" not in m.capabilities, "no LOGINDISABLED after TLS")
        typ, _ = m.login(USER, PASSWORD)
        check(typ == "OK", "LOGIN")
        typ, data = m.list()
        check(typ == "OK" and any(b"INBOX" in d for d in data), "LIST shows INBOX: %r" % data)
        typ, data = m.select("INBOX", readonly=True)
        check(typ == "OK" and data == [b"0"], "EXAMINE INBOX: empty, got %r" % data)
        return "listed and examined INBOX"
    finally:
        m.logout()


def run_pop3(host, port, ctx):
    p = poplib.POP3(host, port, timeout=TIMEOUT)
    try:
        caps = p.capa()
        check("STLS" in caps, "STLS advertised before TLS")
        check("USER" not in caps and "SASL" not in caps, "no USER/SASL before TLS: %r" % caps)
        p.stls(context=ctx)
        caps = p.capa()
        check("STLS" not in caps, "no STLS after TLS")
        check("USER" in caps and "PLAIN" in caps.get("SASL", []), "USER and SASL PLAIN after TLS: %r" % caps)
        p.user(USER)
        p.pass_(PASSWORD)
        check(p.stat() == (0, 0), "STAT on an empty maildrop")
        _, listing, _ = p.list()
        check(listing == [], "LIST empty")
        _, uids, _ = p.uidl()
        check(uids == [], "UIDL empty")
        return "logged in, empty maildrop"
    finally:
        p.quit()


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    proto, host, port, cafile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    ctx = ssl.create_default_context(cafile=cafile)
    run = {"smtp": run_smtp, "imap": run_imap, "pop3": run_pop3}[proto]
    print(run(host, port, ctx))


if __name__ == "__main__":
    main()
