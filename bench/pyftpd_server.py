"""pyftpdlib on loopback for bench/compare.sh: anonymous, writable, one process; with
`--tls CERT KEY`, explicit FTPS offered (not required) through pyftpdlib's TLS_FTPHandler
(needs pyopenssl).

Usage: python3 pyftpd_server.py PORT ROOT PASSIVE_START PASSIVE_END [--tls CERT KEY]
"""
import argparse
import logging

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.servers import FTPServer


def handler_class(tls):
    """FTPHandler, or TLS_FTPHandler with the certificate and key `tls` names."""
    if not tls:
        from pyftpdlib.handlers import FTPHandler
        return FTPHandler
    from pyftpdlib.handlers import TLS_FTPHandler
    TLS_FTPHandler.certfile, TLS_FTPHandler.keyfile = tls
    return TLS_FTPHandler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("root")
    parser.add_argument("passive_start", type=int)
    parser.add_argument("passive_end", type=int)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    authorizer = DummyAuthorizer()
    authorizer.add_anonymous(args.root, perm="elradfmw")
    handler = handler_class(args.tls)
    handler.authorizer = authorizer
    handler.passive_ports = range(args.passive_start, args.passive_end + 1)
    server = FTPServer(("127.0.0.1", args.port), handler)
    server.max_cons = 12000
    server.max_cons_per_ip = 0
    server.serve_forever()


if __name__ == "__main__":
    main()
