// A small command-line parser: "--name value" options, "--flag" switches and positional
// arguments, checked against a declared list that also produces the --help text.
#pragma once

#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace mask_detection {

/// A mistake in how the program was called (exit code 2).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct OptionSpec {
  std::string name;        // without the dashes
  std::string value_name;  // empty for a switch
  std::string help;
};

class Arguments {
 public:
  Arguments(const std::vector<std::string>& args, std::vector<OptionSpec> specs)
      : specs_(std::move(specs)) {
    for (std::size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a.rfind("--", 0) != 0 || a == "--") {
        positional_.push_back(a);
        continue;
      }
      const std::string name = a.substr(2);
      const OptionSpec* spec = find(name);
      if (!spec) throw UsageError("unknown option '" + a + "'");
      if (spec->value_name.empty()) {
        values_[name] = "";
      } else {
        if (i + 1 >= args.size()) throw UsageError("option '" + a + "' needs a value");
        values_[name] = args[++i];
      }
    }
  }

  [[nodiscard]] bool has(const std::string& name) const { return values_.count(name) > 0; }
  [[nodiscard]] std::string get(const std::string& name, const std::string& fallback) const {
    const auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  /// The option's value as a whole number in [low, high], or `fallback` when it is absent.
  [[nodiscard]] long get_int(const std::string& name, long fallback, long low, long high) const {
    return get_number<long>(name, fallback, low, high, "a whole number");
  }
  /// The option's value as a number in [low, high], or `fallback` when it is absent.
  [[nodiscard]] double get_double(const std::string& name, double fallback, double low,
                                  double high) const {
    return get_number<double>(name, fallback, low, high, "a number");
  }
  /// The option's value as comma-separated whole numbers, each in [low, high]; empty when the
  /// option is absent.
  [[nodiscard]] std::vector<long> get_int_list(const std::string& name, long low, long high) const {
    std::vector<long> values;
    if (!has(name)) return values;
    const std::string text = get(name, "");
    std::size_t start = 0;
    for (;;) {
      const std::size_t comma = text.find(',', start);
      const std::string item = text.substr(start, comma - start);
      const std::optional<long> value = parse_number<long>(item, low, high);
      if (!value)
        throw UsageError("--" + name + " takes whole numbers from " + std::to_string(low) + " to " +
                         std::to_string(high) + " separated by commas, not '" + text + "'");
      values.push_back(*value);
      if (comma == std::string::npos) return values;
      start = comma + 1;
    }
  }
  [[nodiscard]] const std::vector<std::string>& positional() const { return positional_; }

  /// The option list for --help.
  [[nodiscard]] std::string help() const {
    std::ostringstream out;
    for (const auto& s : specs_) {
      std::string left = "  --" + s.name + (s.value_name.empty() ? "" : " " + s.value_name);
      left.append(left.size() < 24 ? 24 - left.size() : 1, ' ');
      out << left << s.help << '\n';
    }
    return out.str();
  }

 private:
  template <typename N>
  N get_number(const std::string& name, N fallback, N low, N high, const char* kind) const {
    if (!has(name)) return fallback;
    const std::string text = get(name, "");
    const std::optional<N> value = parse_number<N>(text, low, high);
    if (!value) {
      std::ostringstream message;
      message << "--" << name << " takes " << kind << " from " << low << " to " << high << ", not '"
              << text << "'";
      throw UsageError(message.str());
    }
    return *value;
  }

  /// `text` as a number in [low, high], the whole text and nothing after it; else nothing.
  template <typename N>
  static std::optional<N> parse_number(const std::string& text, N low, N high) {
    std::size_t used = 0;
    N value{};
    try {
      if constexpr (std::is_integral_v<N>)
        value = std::stol(text, &used);
      else
        value = std::stod(text, &used);
    } catch (const std::exception&) {
      return std::nullopt;
    }
    if (text.empty() || used != text.size() || !(value >= low && value <= high))
      return std::nullopt;
    return value;
  }

  const OptionSpec* find(const std::string& name) const {
    for (const auto& s : specs_)
      if (s.name == name) return &s;
    return nullptr;
  }

  std::vector<OptionSpec> specs_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

}  // namespace mask_detection
