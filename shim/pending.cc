#include "pending.h"

#include <algorithm>
#include <numeric>

#include "format.h"

namespace trlmdb {

void PendingSet::add(MDB_dbi dbi, std::string_view dbname, std::string_view key, Op op) {
  Record r{static_cast<uint32_t>(arena_.size()),
           static_cast<uint32_t>(dbname.size() + 1 + key.size()), dbi, op};
  append_xkey(&arena_, dbname, key);
  records_.push_back(r);
}

void PendingSet::append(const PendingSet &later) {
  const auto base = static_cast<uint32_t>(arena_.size());
  arena_.append(later.arena_);
  records_.reserve(records_.size() + later.records_.size());
  for (Record r : later.records_) {
    r.offset += base;
    records_.push_back(r);
  }
}

void PendingSet::mark_db_deleted(std::string_view dbname, PendingSet *into) const {
  for (const Record &r : records_) {
    std::string_view db, key;
    if (split_xkey(xkey_of(r), &db, &key) && db == dbname && !key.empty())
      into->add(r.dbi, db, key, Op::kDelete);
  }
}

void PendingSet::clear() {
  arena_.clear();
  records_.clear();
}

std::vector<PendingSet::Entry> PendingSet::resolve() const {
  std::vector<uint32_t> order(records_.size());
  std::iota(order.begin(), order.end(), 0u);
  // Stable: among equal xkeys the later record stays later, and wins below.
  std::stable_sort(order.begin(), order.end(), [this](uint32_t a, uint32_t b) {
    return xkey_of(records_[a]) < xkey_of(records_[b]);
  });
  std::vector<Entry> out;
  out.reserve(order.size());
  for (uint32_t i : order) {
    const Record &r = records_[i];
    std::string_view x = xkey_of(r);
    const bool deleted = r.op == Op::kDelete;
    if (!out.empty() && out.back().xkey == x)
      out.back() = Entry{x, r.dbi, r.op, deleted || out.back().deleted};
    else
      out.push_back(Entry{x, r.dbi, r.op, deleted});
  }
  return out;
}

}  // namespace trlmdb
