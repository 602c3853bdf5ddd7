// A generation's events carried onto the thread (strand) of whoever answers the client: an
// Owner with Post(f), Token(token, index) and End(end), kept alive until the generation ends.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "api-server/http/generation.h"

namespace gantry::api::http {

template <typename Owner>
class PostingListener final : public GenerationListener {
 public:
  explicit PostingListener(std::shared_ptr<Owner> owner) : owner_(std::move(owner)) {}

  void OnToken(std::string token, int64_t index) override {
    owner_->Post([o = owner_, token = std::move(token), index]() mutable { o->Token(std::move(token), index); });
  }
  void OnEnd(GenerationEnd end) override {
    owner_->Post([o = owner_, end = std::move(end)]() mutable { o->End(std::move(end)); });
  }

 private:
  const std::shared_ptr<Owner> owner_;
};

}  // namespace gantry::api::http
