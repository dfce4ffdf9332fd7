// Unit tests for cursor_layout.h: the dbi read from LMDB's cursor struct
// agrees with mdb_cursor_dbi for the system's liblmdb, and a disagreement
// turns the shortcut off for good.
#include "cursor_layout.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "real_lmdb.h"

namespace trlmdb {
namespace {

class CursorLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/trlmdb-cursor-layout-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(real().mdb_env_create(&env_), 0);
    ASSERT_EQ(real().mdb_env_set_maxdbs(env_, 4), 0);
    ASSERT_EQ(real().mdb_env_open(env_, dir_.c_str(), 0, 0644), 0);
    ASSERT_EQ(real().mdb_txn_begin(env_, nullptr, 0, &txn_), 0);
    ASSERT_EQ(real().mdb_dbi_open(txn_, "named", MDB_CREATE, &named_), 0);
  }
  void TearDown() override {
    if (txn_) real().mdb_txn_abort(txn_);
    real().mdb_env_close(env_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  MDB_cursor *Open(MDB_dbi dbi) {
    MDB_cursor *mc = nullptr;
    EXPECT_EQ(real().mdb_cursor_open(txn_, dbi, &mc), 0);
    return mc;
  }

  std::string dir_;
  MDB_env *env_ = nullptr;
  MDB_txn *txn_ = nullptr;
  MDB_dbi named_ = 0;
};

// One test: the state is process-wide and only ever moves 0 -> 1 -> -1.
TEST_F(CursorLayoutTest, TrustedOnlyAfterAgreementAndNeverAfterADisagreement) {
  MDB_dbi main_dbi;
  ASSERT_EQ(real().mdb_dbi_open(txn_, nullptr, 0, &main_dbi), 0);
  ASSERT_EQ(main_dbi, kMainDbi);
  MDB_cursor *named = Open(named_), *main = Open(main_dbi);

  EXPECT_EQ(cursor_layout::g_state.load(), 0);
  EXPECT_FALSE(cursor_layout::surely_not_main(named)) << "used before any check";

  cursor_layout::check(named, real().mdb_cursor_dbi(named));
  cursor_layout::check(main, real().mdb_cursor_dbi(main));
  ASSERT_EQ(cursor_layout::g_state.load(), 1) << "the system liblmdb's MDB_cursor differs";
  EXPECT_TRUE(cursor_layout::surely_not_main(named));
  EXPECT_FALSE(cursor_layout::surely_not_main(main));

  cursor_layout::check(named, named_ + 1);  // as if another LMDB's struct
  EXPECT_EQ(cursor_layout::g_state.load(), -1);
  EXPECT_FALSE(cursor_layout::surely_not_main(named));
  cursor_layout::check(named, real().mdb_cursor_dbi(named));
  EXPECT_EQ(cursor_layout::g_state.load(), -1) << "trusted again after a disagreement";

  real().mdb_cursor_close(named);
  real().mdb_cursor_close(main);
}

}  // namespace
}  // namespace trlmdb
