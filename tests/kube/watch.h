// Watches (GET ...?watch=true on a collection): the events after a
// resourceVersion as JSON lines (ADDED, MODIFIED, DELETED), read from the
// store's history. From resourceVersion 0 (or none), the current objects first
// as ADDED. A resourceVersion older than the retained history gets one ERROR
// event carrying 410 Gone (Expired): the client relists. With
// allowWatchBookmarks=true a BOOKMARK with the current resourceVersion ends the
// stream (timeoutSeconds, 1800 by default, or the server stopping); a stream
// cut off by /admin/compact?advance ends without one, as on an API server
// restart. Label selectors apply to every event.
#pragma once

#include <atomic>
#include <mutex>

#include "object_store.h"
#include "resources.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace backstop::testing {

// Answers the watch request `req` in `res`: a 404 or 400 Status, or a chunked
// stream that holds `mutex` (the one guarding store and registry) only while
// it reads them. store, registry and stopping must outlive the stream.
void serve_watch(const httplib::Request& req, httplib::Response& res, std::mutex& mutex, ObjectStore& store,
                 const ResourceRegistry& registry, const std::atomic<bool>& stopping);

}  // namespace backstop::testing
