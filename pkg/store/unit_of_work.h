// The store's transactions, opened by the code that decides what must commit
// together (a claim, an exit's attempt, a trailing batch), and handed to the
// repositories, which alone write SQL. Orchestrators name what a transaction
// is for, never the driver's types or a SET statement:
//
//   store::UnitOfWork tx(connection, store::Commit::kDeferred);
//   repository.candidates(tx, ...);
//   store::EventStore::append(tx, events);
//   tx.commit();
//
// A unit of work that is neither committed nor aborted rolls back when it goes
// out of scope (an exception on the way). A lost connection surfaces as
// pqxx::broken_connection / in_doubt_error, which store::is_lost_connection
// recognises and app::run_guarded maps to exit code 3.
#pragma once

#include <pqxx/pqxx>

namespace backstop::store {

// A session with PostgreSQL (store::connect opens one).
using Connection = pqxx::connection;

// When COMMIT returns.
enum class Commit {
  // After the WAL is flushed: anything an order, a message or another
  // process's decision may follow (the default).
  kFlushed,
  // Without waiting for the flush (synchronous_commit off, this transaction
  // only). For writes nothing leaves the process on the strength of: a crash
  // may lose them, and the next flushed commit on the server makes them
  // durable with it. A claim: its exit's next step (EXECUTION_SUBMITTED, or a
  // block) commits flushed before any order is sent.
  kDeferred,
};

// A read-write transaction.
class UnitOfWork {
 public:
  explicit UnitOfWork(Connection& connection, Commit commit = Commit::kFlushed);
  UnitOfWork(const UnitOfWork&) = delete;
  UnitOfWork& operator=(const UnitOfWork&) = delete;

  void commit() { work_.commit(); }
  void abort() { work_.abort(); }

  // For the repositories (store/), which take the driver's transaction.
  operator pqxx::work&() { return work_; }  // NOLINT(google-explicit-constructor)

 private:
  pqxx::work work_;
};

// A read-only transaction: one snapshot for several reads (READ ONLY, so a
// write by mistake is refused by the server).
class ReadOnlyWork {
 public:
  explicit ReadOnlyWork(Connection& connection) : work_(connection) {}
  ReadOnlyWork(const ReadOnlyWork&) = delete;
  ReadOnlyWork& operator=(const ReadOnlyWork&) = delete;

  void commit() { work_.commit(); }

  operator pqxx::transaction_base&() { return work_; }  // NOLINT(google-explicit-constructor)

 private:
  pqxx::read_transaction work_;
};

}  // namespace backstop::store
