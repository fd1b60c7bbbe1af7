// RocksDB's C API (Debian librocksdb-dev 7.8.3). Imported by EddyState alone.
#include <rocksdb/c.h>
