#include "tools/gantryctl/args.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace gantry::ctl {

std::string Args::Get(const std::string& flag, const std::string& fallback) const {
  auto it = values_.find(flag);
  return it == values_.end() || it->second.empty() ? fallback : it->second.back();
}

std::vector<std::string> Args::All(const std::string& flag) const {
  auto it = values_.find(flag);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

const std::vector<FlagSpec>& GlobalFlags() {
  static const std::vector<FlagSpec> flags = {
      {"config", 0, true, "FILE", "config file with named contexts (default $GANTRY_CONFIG, else ~/.config/gantry/config.yaml)"},
      {"context", 0, true, "NAME", "context in the config file (default $GANTRY_CONTEXT, else its current-context)"},
      {"addr", 0, true, "HOST:PORT", "API server address ($GANTRY_ADDR)"},
      {"ca", 0, true, "FILE", "CA certificate that signed the server ($GANTRY_CA; default: the system's trust store)"},
      {"cert", 0, true, "FILE", "client certificate, for certificate auth ($GANTRY_CERT)"},
      {"key", 0, true, "FILE", "its private key ($GANTRY_KEY)"},
      {"token-file", 0, true, "FILE", "file holding an API key ($GANTRY_TOKEN_FILE; or the key itself in $GANTRY_TOKEN)"},
      {"timeout", 0, true, "DURATION", "deadline of each call that is not a stream (default 30s)"},
      {"output", 'o', true, "FORMAT", "table (default), wide, json, yaml or name"},
      {"help", 'h', false, "", "show help for the command"},
  };
  return flags;
}

namespace {

const FlagSpec* FindFlag(const std::vector<FlagSpec>& flags, const std::string& long_name, char short_name) {
  for (const std::vector<FlagSpec>* set : {&flags, &GlobalFlags()}) {
    for (const FlagSpec& f : *set) {
      if ((!long_name.empty() && f.name == long_name) || (short_name != 0 && f.short_name == short_name)) return &f;
    }
  }
  return nullptr;
}

}  // namespace

std::string ParseArgs(const std::vector<std::string>& words, const std::vector<FlagSpec>& flags,
                      size_t flags_end_after, Args* out) {
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& word = words[i];
    const bool flags_over = flags_end_after > 0 && out->positional().size() >= flags_end_after;
    if (word == "--") {
      for (++i; i < words.size(); ++i) out->AddPositional(words[i]);
      break;
    }
    if (flags_over || word.size() < 2 || word[0] != '-') {
      out->AddPositional(word);
      continue;
    }
    std::string name, value;
    bool has_value = false;
    const FlagSpec* spec;
    if (absl::StartsWith(word, "--")) {
      name = word.substr(2);
      if (size_t eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name.resize(eq);
        has_value = true;
      }
      spec = FindFlag(flags, name, 0);
    } else {
      if (word.size() > 2) {  // -ojson
        value = word.substr(2);
        has_value = true;
      }
      spec = FindFlag(flags, "", word[1]);
    }
    if (spec == nullptr) return absl::StrCat("unknown flag ", word, " (see --help)");
    if (!spec->takes_value) {
      if (has_value) return absl::StrCat("--", spec->name, " takes no value");
      out->Add(spec->name, "true");
      continue;
    }
    if (!has_value) {
      if (i + 1 >= words.size()) return absl::StrCat("--", spec->name, " needs a value (", spec->value_name, ")");
      value = words[++i];
    }
    out->Add(spec->name, value);
  }
  return "";
}

std::string FlagHelp(const std::vector<FlagSpec>& flags) {
  std::vector<std::pair<std::string, std::string>> rows;
  size_t width = 0;
  for (const FlagSpec& f : flags) {
    std::string left = f.short_name ? absl::StrCat("-", std::string(1, f.short_name), ", --", f.name)
                                    : absl::StrCat("    --", f.name);
    if (f.takes_value) absl::StrAppend(&left, " ", f.value_name);
    width = std::max(width, left.size());
    rows.emplace_back(left, f.help);
  }
  std::string out;
  for (const auto& [left, help] : rows) {
    absl::StrAppend(&out, "  ", left, std::string(width - left.size() + 2, ' '), help, "\n");
  }
  return out;
}

absl::Status ParseDurationFlag(const Args& args, const std::string& flag, absl::Duration* out,
                               bool must_be_positive) {
  if (!args.Has(flag)) return absl::OkStatus();
  const std::string text = args.Get(flag);
  absl::Duration d;
  if (!absl::ParseDuration(text, &d)) {
    const bool bare_number = !text.empty() && text.find_first_not_of("0123456789.") == std::string::npos;
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, ": \"", text, "\" is not a duration", bare_number ? " (it needs a unit)" : "",
        "; write a number and a unit, such as ", bare_number ? text + "s, " : "", "90s, 5m or 1h30m"));
  }
  if (d < absl::ZeroDuration() || (must_be_positive && d == absl::ZeroDuration())) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": \"", text, "\" must be ",
                                                   must_be_positive ? "more than zero" : "zero or more"));
  }
  *out = d;
  return absl::OkStatus();
}

}  // namespace gantry::ctl
