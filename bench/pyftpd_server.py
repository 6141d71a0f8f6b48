"""pyftpdlib on loopback for bench/compare.sh: anonymous, writable, one process.

Usage: python3 pyftpd_server.py PORT ROOT PASSIVE_START PASSIVE_END
"""
import logging
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


def main():
    port, root = int(sys.argv[1]), sys.argv[2]
    passive = range(int(sys.argv[3]), int(sys.argv[4]) + 1)
    logging.basicConfig(level=logging.WARNING)
    authorizer = DummyAuthorizer()
    authorizer.add_anonymous(root, perm="elradfmw")
    handler = FTPHandler
    handler.authorizer = authorizer
    handler.passive_ports = passive
    server = FTPServer(("127.0.0.1", port), handler)
    server.max_cons = 4000
    server.max_cons_per_ip = 0
    server.serve_forever()


if __name__ == "__main__":
    main()
