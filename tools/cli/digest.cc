// `trlmdb digest ENV`: a BLAKE2b-256 hash of the user-visible content, the
// same for two environments holding the same data whatever their history,
// page layout or bookkeeping.
//
// Hashed stream (version 1; changing it changes every digest, so don't):
//   "trlmdb-digest-v1\0"
//   for each user database, main first (empty name), then by name bytes
//   (leaving out a database whose drop is pending, see env_walk.h):
//     'D' u64be(len) name  u32be(flags & persistent flags)
//     for each key/value pair in database order (every duplicate):
//       'K' u64be(len) key  'V' u64be(len) value
// Every field is tagged and length-prefixed, so the stream decodes uniquely
// and no two different contents give the same stream.
#include <sodium.h>

#include <cinttypes>
#include <cstdio>
#include <string>

#include "cli_common.h"
#include "commands.h"
#include "env_walk.h"
#include "format.h"

namespace trlmdb::cli {
namespace {

const char kHelp[] =
    "usage: trlmdb digest [--verbose] ENV\n"
    "\n"
    "Prints a BLAKE2b-256 hash (hex) of the user-visible content of the LMDB\n"
    "environment ENV: every user database (the main one and every named one but\n"
    "the reserved _trlmdb_* ones), its flags, and all its keys and values,\n"
    "duplicates included. Timestamps, page layout and history do not count: two\n"
    "environments with the same data have the same digest. Works on any LMDB\n"
    "environment, stamped by trlmdb or not; read-only.\n"
    "\n"
    "options:\n"
    "  --verbose   first print one line per database: its own digest, flags,\n"
    "              keys, entries and name\n"
    "  -h, --help  show this help\n";

constexpr char kDomain[] = "trlmdb-digest-v1";  // hashed with its terminating 0x00

class Hasher {
 public:
  Hasher() { crypto_generichash_init(&state_, nullptr, 0, kBytes); }

  void update(const void *p, std::size_t n) {
    crypto_generichash_update(&state_, static_cast<const unsigned char *>(p), n);
  }
  void tagged(char tag, std::string_view bytes) {
    unsigned char head[9];
    head[0] = static_cast<unsigned char>(tag);
    put_be64(head + 1, bytes.size());
    update(head, sizeof head);
    update(bytes.data(), bytes.size());
  }
  void u32(uint32_t v) {
    unsigned char b[4];
    put_be32(b, v);
    update(b, sizeof b);
  }
  std::string hex_final() {
    unsigned char out[kBytes];
    crypto_generichash_final(&state_, out, sizeof out);
    return hex(out, sizeof out);
  }

 private:
  static constexpr std::size_t kBytes = crypto_generichash_BYTES;  // 32
  crypto_generichash_state state_;
};

int run(int argc, char **argv) {
  ParsedArgs args = parse_args(argc, argv, {{"--verbose", false}});
  if (args.help) {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }
  std::string path = single_env_arg(args);
  const bool verbose = args.has("--verbose");
  if (sodium_init() < 0) throw Error("cannot initialise libsodium");

  Env env(path, /*read_only=*/true);
  Txn txn(env, /*read_only=*/true);
  Catalog cat = Catalog::discover(txn.get());

  Hasher all;
  all.update(kDomain, sizeof kDomain);
  for (const UserDb &db : cat.user_dbs()) {
    if (drop_pending(txn.get(), cat, db)) continue;  // dropped, see env_walk.h
    // The database's own digest (--verbose): the digest of an environment
    // holding only this database.
    Hasher one;
    one.update(kDomain, sizeof kDomain);
    auto both = [&](auto &&fn) {
      fn(all);
      if (verbose) fn(one);
    };
    both([&](Hasher &h) {
      h.tagged('D', db.name);
      h.u32(db.flags);
    });
    uint64_t keys = 0, entries = 0;
    Cursor cur(txn.get(), db.dbi);
    MDB_val k, v;
    std::string_view last_key;
    for (bool ok = cur.get(&k, &v, MDB_FIRST); ok; ok = cur.get(&k, &v, MDB_NEXT)) {
      std::string_view key = as_sv(k), value = as_sv(v);
      if (db.is_main() && cat.is_subdb_record(key)) continue;
      if (entries == 0 || key != last_key) ++keys;
      ++entries;
      last_key = key;  // points into the map, valid for the transaction
      both([&](Hasher &h) {
        h.tagged('K', key);
        h.tagged('V', value);
      });
    }
    if (verbose) {
      std::printf("%s  %-24s %10" PRIu64 " keys %10" PRIu64 " entries  %s\n",
                  one.hex_final().c_str(), db_flags_string(db.flags).c_str(), keys, entries,
                  db.is_main() ? "(main)" : escape(db.name).c_str());
    }
  }
  std::printf("%s\n", all.hex_final().c_str());
  return kExitOk;
}

}  // namespace

const Command kDigestCommand = {"digest", "hash the user-visible content of an environment", kHelp,
                                run};

}  // namespace trlmdb::cli
