#include "tools/bench/raw_commit_ceiling.h"

#include <pqxx/pqxx>

#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace gantry::bench {

LoadResult RawCommitCeiling(const std::string& dsn, int clients, int operations, int commits_per_operation) {
  {
    pqxx::connection admin(dsn);
    pqxx::nontransaction tx(admin);
    tx.exec("DROP TABLE IF EXISTS bench_raw_commits");
    // As wide as a session row's hot part: an id, a phase, a message and a timestamp.
    tx.exec("CREATE TABLE bench_raw_commits (id bigserial PRIMARY KEY, client integer NOT NULL, "
            "phase text NOT NULL, message text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())");
  }
  // A connection per client, opened with its statements prepared before the clock starts (as
  // gantry-api's pool is), handed to each load thread on its first call.
  std::vector<std::unique_ptr<pqxx::connection>> opened;
  for (int c = 0; c < clients; ++c) {
    opened.push_back(std::make_unique<pqxx::connection>(dsn));
    opened.back()->prepare("raw_insert", "INSERT INTO bench_raw_commits (client, phase, message) "
                                         "VALUES ($1, 'SCHEDULED', '') RETURNING id");
    opened.back()->prepare("raw_update",
                           "UPDATE bench_raw_commits SET phase = $2, message = $3, updated_at = now() WHERE id = $1");
  }
  std::mutex mu;
  size_t handed_out = 0;
  std::unordered_map<std::thread::id, pqxx::connection*> by_thread;
  auto connection = [&]() -> pqxx::connection& {
    std::lock_guard<std::mutex> lock(mu);
    pqxx::connection*& c = by_thread[std::this_thread::get_id()];
    if (c == nullptr) c = opened.at(handed_out++).get();
    return *c;
  };
  LoadResult result = ClosedLoop(operations, clients, [&](int i) {
    try {
      pqxx::connection& c = connection();
      int64_t id = 0;
      {
        pqxx::work tx(c);
        id = tx.exec_prepared1("raw_insert", i)[0].as<int64_t>();
        tx.commit();
      }
      for (int k = 1; k < commits_per_operation; ++k) {
        pqxx::work tx(c);
        tx.exec_prepared0("raw_update", id, "RUNNING", "started on worker raw");
        tx.commit();
      }
      return true;
    } catch (const std::exception&) {
      return false;
    }
  });
  opened.clear();
  pqxx::connection admin(dsn);
  pqxx::nontransaction tx(admin);
  tx.exec("DROP TABLE bench_raw_commits");
  return result;
}

}  // namespace gantry::bench
