"""A FUSE file system that fails with EIO, for ferryd's fault tests.

Usage: python3 eio_fs.py MOUNTPOINT

Files (each 4 MiB of the byte 'x'):
  good.bin      reads whole
  bad.bin       reads fail with EIO from 1 MiB on
  sink/         writes of any file fail with EIO once 1 MiB is written
The process serves in the foreground until unmounted (fusermount -u MOUNTPOINT).
"""
import errno
import stat
import sys
import time

from fuse import FUSE, FuseOSError, Operations

SIZE = 4 << 20
BAD_FROM = 1 << 20


class EioFs(Operations):
    def __init__(self):
        self.written = {}
        self.now = time.time()

    def getattr(self, path, fh=None):
        if path in ("/", "/sink"):
            return dict(st_mode=stat.S_IFDIR | 0o777, st_nlink=2, st_size=0,
                        st_mtime=self.now, st_atime=self.now, st_ctime=self.now)
        if path in ("/good.bin", "/bad.bin"):
            return dict(st_mode=stat.S_IFREG | 0o444, st_nlink=1, st_size=SIZE,
                        st_mtime=self.now, st_atime=self.now, st_ctime=self.now)
        if path in self.written:
            return dict(st_mode=stat.S_IFREG | 0o666, st_nlink=1, st_size=self.written[path],
                        st_mtime=self.now, st_atime=self.now, st_ctime=self.now)
        raise FuseOSError(errno.ENOENT)

    def readdir(self, path, fh):
        if path == "/":
            return [".", "..", "good.bin", "bad.bin", "sink"]
        if path == "/sink":
            return [".", ".."] + [p.split("/")[-1] for p in self.written]
        raise FuseOSError(errno.ENOTDIR)

    def open(self, path, flags):
        self.getattr(path)
        return 0

    def read(self, path, size, offset, fh):
        if path == "/bad.bin" and offset + size > BAD_FROM:
            raise FuseOSError(errno.EIO)
        end = min(SIZE, offset + size)
        return b"x" * max(0, end - offset)

    def create(self, path, mode, fi=None):
        if not path.startswith("/sink/"):
            raise FuseOSError(errno.EACCES)
        self.written[path] = 0
        return 0

    def truncate(self, path, length, fh=None):
        if path in self.written:
            self.written[path] = length
            return 0
        raise FuseOSError(errno.EACCES)

    def write(self, path, data, offset, fh):
        if path not in self.written:
            raise FuseOSError(errno.EACCES)
        if offset + len(data) > BAD_FROM:
            raise FuseOSError(errno.EIO)
        self.written[path] = max(self.written[path], offset + len(data))
        return len(data)

    def unlink(self, path):
        self.written.pop(path, None)
        return 0

    def rename(self, old, new):
        if old in self.written:
            self.written[new] = self.written.pop(old)
            return 0
        raise FuseOSError(errno.EACCES)

    def statfs(self, path):
        return dict(f_bsize=4096, f_frsize=4096, f_blocks=1 << 20, f_bfree=1 << 19,
                    f_bavail=1 << 19, f_files=1000, f_ffree=900, f_namemax=255)


if __name__ == "__main__":
    FUSE(EioFs(), sys.argv[1], foreground=True, nothreads=True, allow_other=False)
