#include "audit/filter.h"

#include <charconv>
#include <cstdint>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "common/time_format.h"

namespace custos::audit {

struct Filter::Node {
  enum class Kind { kAnd, kOr, kNot, kCompare, kPresent };
  enum class Op { kEq, kNe, kGt, kGe, kLt, kLe, kSw, kCo, kEw };
  enum class ValueType { kString, kNumber, kTrue, kFalse, kNull };

  Kind kind = Kind::kCompare;
  std::vector<int> children;  // kAnd/kOr: two or more; kNot: one
  std::vector<std::string> path;
  Op op = Op::kEq;
  ValueType value_type = ValueType::kNull;
  std::string text;         // kString: decoded; kNumber: as written
  double number = 0;        // kNumber
  bool is_integer = false;  // kNumber without fraction or exponent that fits in int64
  int64_t integer = 0;
  std::optional<absl::Time> time;  // kString that is an RFC 3339 date-time
};

namespace {

using Node = Filter::Node;

constexpr size_t kMaxShownToken = 40;

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsWordChar(char c) {
  return IsAlpha(c) || IsDigit(c) || c == '_' || c == '.' || c == '-' || c == '$';
}
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

absl::Status Error(std::string message) {
  return absl::InvalidArgumentError("filter: " + std::move(message));
}

enum class TokenKind { kWord, kString, kNumber, kLParen, kRParen, kEnd };

struct Token {
  TokenKind kind = TokenKind::kEnd;
  size_t pos = 0;
  std::string_view raw;  // as written, quotes included
  std::string text;      // kString: decoded value
};

std::string Shown(std::string_view raw) {
  if (raw.size() <= kMaxShownToken) return std::string(raw);
  return std::string(raw.substr(0, kMaxShownToken)) + "...";
}

std::string Describe(const Token& t) {
  if (t.kind == TokenKind::kEnd) return "the end of the filter";
  return fmt::format("'{}'", Shown(t.raw));
}

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::optional<uint32_t> Hex4(std::string_view s, size_t at) {
  if (at + 4 > s.size()) return std::nullopt;
  uint32_t v = 0;
  for (size_t i = at; i < at + 4; ++i) {
    char c = s[i];
    v <<= 4;
    if (IsDigit(c)) {
      v |= static_cast<uint32_t>(c - '0');
    } else if (Lower(c) >= 'a' && Lower(c) <= 'f') {
      v |= static_cast<uint32_t>(Lower(c) - 'a' + 10);
    } else {
      return std::nullopt;
    }
  }
  return v;
}

// Reads a string literal starting at the opening quote s[start]; JSON escapes.
absl::StatusOr<Token> LexString(std::string_view s, size_t start) {
  Token t;
  t.kind = TokenKind::kString;
  t.pos = start;
  size_t i = start + 1;
  while (i < s.size()) {
    char c = s[i];
    if (c == '"') {
      t.raw = s.substr(start, i + 1 - start);
      return t;
    }
    if (c != '\\') {
      t.text.push_back(c);
      ++i;
      continue;
    }
    if (i + 1 >= s.size()) break;
    char e = s[i + 1];
    switch (e) {
      case '"':
        t.text.push_back('"');
        break;
      case '\\':
        t.text.push_back('\\');
        break;
      case '/':
        t.text.push_back('/');
        break;
      case 'b':
        t.text.push_back('\b');
        break;
      case 'f':
        t.text.push_back('\f');
        break;
      case 'n':
        t.text.push_back('\n');
        break;
      case 'r':
        t.text.push_back('\r');
        break;
      case 't':
        t.text.push_back('\t');
        break;
      case 'u': {
        std::optional<uint32_t> cp = Hex4(s, i + 2);
        if (!cp) return Error(fmt::format("invalid \\u escape at position {}", i));
        size_t consumed = 6;
        if (*cp >= 0xD800 && *cp <= 0xDBFF) {
          std::optional<uint32_t> low;
          if (i + 7 < s.size() && s[i + 6] == '\\' && s[i + 7] == 'u') low = Hex4(s, i + 8);
          if (!low || *low < 0xDC00 || *low > 0xDFFF) {
            return Error(fmt::format("unpaired UTF-16 surrogate in \\u escape at position {}", i));
          }
          *cp = 0x10000 + ((*cp - 0xD800) << 10) + (*low - 0xDC00);
          consumed = 12;
        } else if (*cp >= 0xDC00 && *cp <= 0xDFFF) {
          return Error(fmt::format("unpaired UTF-16 surrogate in \\u escape at position {}", i));
        }
        AppendUtf8(*cp, t.text);
        i += consumed;
        continue;
      }
      default:
        return Error(fmt::format("invalid escape '\\{}' at position {}", e, i));
    }
    i += 2;
  }
  return Error(fmt::format("unterminated string starting at position {}", start));
}

// JSON number syntax: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
absl::StatusOr<Token> LexNumber(std::string_view s, size_t start) {
  size_t i = start;
  auto digits = [&] {
    size_t from = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    return i > from;
  };
  bool ok = true;
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else {
    ok = digits();
  }
  if (ok && i < s.size() && s[i] == '.') {
    ++i;
    ok = digits();
  }
  if (ok && i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    ok = digits();
  }
  if (!ok || (i < s.size() && IsWordChar(s[i]))) {
    size_t end = i;
    while (end < s.size() && IsWordChar(s[end])) ++end;
    return Error(fmt::format("invalid number '{}' at position {}",
                             Shown(s.substr(start, std::max(end, start + 1) - start)), start));
  }
  Token t;
  t.kind = TokenKind::kNumber;
  t.pos = start;
  t.raw = s.substr(start, i - start);
  return t;
}

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view s) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (true) {
    while (i < s.size() && IsSpace(s[i])) ++i;
    if (i == s.size()) break;
    char c = s[i];
    if (c == '(' || c == ')') {
      Token t;
      t.kind = c == '(' ? TokenKind::kLParen : TokenKind::kRParen;
      t.pos = i;
      t.raw = s.substr(i, 1);
      tokens.push_back(std::move(t));
      ++i;
    } else if (c == '"') {
      ASSIGN_OR_RETURN(Token t, LexString(s, i));
      i += t.raw.size();
      tokens.push_back(std::move(t));
    } else if (IsDigit(c) || c == '-') {
      ASSIGN_OR_RETURN(Token t, LexNumber(s, i));
      i += t.raw.size();
      tokens.push_back(std::move(t));
    } else if (IsAlpha(c) || c == '_') {
      size_t start = i;
      while (i < s.size() && IsWordChar(s[i])) ++i;
      Token t;
      t.kind = TokenKind::kWord;
      t.pos = start;
      t.raw = s.substr(start, i - start);
      tokens.push_back(std::move(t));
    } else {
      std::string shown = (c > ' ' && c < 0x7f)
                              ? fmt::format("'{}'", c)
                              : fmt::format("byte 0x{:02X}", static_cast<unsigned char>(c));
      return Error(fmt::format("unexpected character {} at position {}", shown, i));
    }
  }
  Token end;
  end.kind = TokenKind::kEnd;
  end.pos = s.size();
  tokens.push_back(std::move(end));
  return tokens;
}

struct OpName {
  std::string_view name;
  Node::Op op;
};
constexpr OpName kOps[] = {
    {"eq", Node::Op::kEq}, {"ne", Node::Op::kNe}, {"gt", Node::Op::kGt},
    {"ge", Node::Op::kGe}, {"lt", Node::Op::kLt}, {"le", Node::Op::kLe},
    {"sw", Node::Op::kSw}, {"co", Node::Op::kCo}, {"ew", Node::Op::kEw},
};

std::string_view NameOf(Node::Op op) {
  for (const OpName& o : kOps) {
    if (o.op == op) return o.name;
  }
  return "?";
}

bool IsWord(const Token& t, std::string_view word) {
  return t.kind == TokenKind::kWord && EqualsIgnoreCase(t.raw, word);
}

bool IsKeyword(const Token& t) { return IsWord(t, "and") || IsWord(t, "or") || IsWord(t, "not"); }

}  // namespace

// Recursive descent over the token list:
//
//   filter  = or EOF
//   or      = and { "or" and }
//   and     = unary { "and" unary }
//   unary   = "not" unary | "(" or ")" | path "pr" | path op value
//
// `depth` counts the enclosing '(' and 'not'; recursion happens only through those, so the
// limit also bounds the parser's stack.
class FilterParser {
 public:
  FilterParser(std::vector<Token> tokens, Filter& filter)
      : tokens_(std::move(tokens)), filter_(filter) {}

  absl::Status Parse() {
    ASSIGN_OR_RETURN(int root, ParseOr(0));
    const Token& t = Peek();
    if (t.kind != TokenKind::kEnd) {
      if (t.kind == TokenKind::kRParen) {
        return Error(fmt::format("unexpected ')' at position {}", t.pos));
      }
      return Error(
          fmt::format("expected 'and', 'or' or the end of the filter at position {}, "
                      "found {}",
                      t.pos, Describe(t)));
    }
    filter_.root_ = root;
    return absl::OkStatus();
  }

 private:
  const Token& Peek() const { return tokens_[pos_]; }
  const Token& Next() { return tokens_[pos_++]; }
  // What the error message names as the token before the current one.
  std::string After() const {
    if (pos_ == 0) return "";
    return fmt::format(" after '{}'", Shown(tokens_[pos_ - 1].raw));
  }

  int Add(Node node) {
    filter_.nodes_.push_back(std::move(node));
    return static_cast<int>(filter_.nodes_.size()) - 1;
  }

  absl::StatusOr<int> ParseOr(int depth) {
    ASSIGN_OR_RETURN(int first, ParseAnd(depth));
    if (!IsWord(Peek(), "or")) return first;
    Node node;
    node.kind = Node::Kind::kOr;
    node.children.push_back(first);
    while (IsWord(Peek(), "or")) {
      Next();
      ASSIGN_OR_RETURN(int child, ParseAnd(depth));
      node.children.push_back(child);
    }
    return Add(std::move(node));
  }

  absl::StatusOr<int> ParseAnd(int depth) {
    ASSIGN_OR_RETURN(int first, ParseUnary(depth));
    if (!IsWord(Peek(), "and")) return first;
    Node node;
    node.kind = Node::Kind::kAnd;
    node.children.push_back(first);
    while (IsWord(Peek(), "and")) {
      Next();
      ASSIGN_OR_RETURN(int child, ParseUnary(depth));
      node.children.push_back(child);
    }
    return Add(std::move(node));
  }

  absl::StatusOr<int> ParseUnary(int depth) {
    const Token& t = Peek();
    if (IsWord(t, "not") || t.kind == TokenKind::kLParen) {
      if (depth + 1 > kMaxFilterDepth) {
        return Error(
            fmt::format("nested deeper than {} levels at position {}", kMaxFilterDepth, t.pos));
      }
    }
    if (IsWord(t, "not")) {
      Next();
      ASSIGN_OR_RETURN(int child, ParseUnary(depth + 1));
      Node node;
      node.kind = Node::Kind::kNot;
      node.children.push_back(child);
      return Add(std::move(node));
    }
    if (t.kind == TokenKind::kLParen) {
      size_t open = t.pos;
      Next();
      ASSIGN_OR_RETURN(int inner, ParseOr(depth + 1));
      const Token& close = Peek();
      if (close.kind != TokenKind::kRParen) {
        return Error(
            fmt::format("expected 'and', 'or' or ')' at position {}, found {} (to close the '(' at "
                        "position {})",
                        close.pos, Describe(close), open));
      }
      Next();
      return inner;
    }
    if (t.kind == TokenKind::kWord && !IsKeyword(t)) return ParseAttributeExpression();
    return Error(fmt::format("expected an attribute path, '(' or 'not'{} at position {}, found {}",
                             After(), t.pos, Describe(t)));
  }

  absl::StatusOr<int> ParseAttributeExpression() {
    const Token& path_token = Next();
    Node node;
    size_t from = 0;
    std::string_view raw = path_token.raw;
    while (true) {
      size_t dot = raw.find('.', from);
      std::string_view segment = raw.substr(from, dot == std::string_view::npos ? dot : dot - from);
      if (segment.empty() || !(IsAlpha(segment[0]) || segment[0] == '_')) {
        return Error(
            fmt::format("invalid attribute path '{}' at position {}", Shown(raw), path_token.pos));
      }
      node.path.emplace_back(segment);
      if (dot == std::string_view::npos) break;
      from = dot + 1;
    }

    const Token& op_token = Peek();
    if (IsWord(op_token, "pr")) {
      Next();
      node.kind = Node::Kind::kPresent;
      return Add(std::move(node));
    }
    bool known = false;
    if (op_token.kind == TokenKind::kWord) {
      for (const OpName& o : kOps) {
        if (EqualsIgnoreCase(op_token.raw, o.name)) {
          node.op = o.op;
          known = true;
        }
      }
    }
    if (!known) {
      return Error(fmt::format(
          "expected an operator{} at position {}, found {} (operators: eq ne gt ge lt le sw co "
          "ew pr)",
          After(), op_token.pos, Describe(op_token)));
    }
    Next();
    node.kind = Node::Kind::kCompare;

    const Token& value = Peek();
    if (value.kind == TokenKind::kString) {
      node.value_type = Node::ValueType::kString;
      node.text = value.text;
      absl::StatusOr<absl::Time> time = ParseRfc3339(node.text);
      if (time.ok()) node.time = *time;
    } else if (value.kind == TokenKind::kNumber) {
      node.value_type = Node::ValueType::kNumber;
      node.text = std::string(value.raw);
      const char* begin = node.text.data();
      const char* end = begin + node.text.size();
      std::from_chars(begin, end, node.number);
      auto [ptr, ec] = std::from_chars(begin, end, node.integer);
      node.is_integer = ec == std::errc() && ptr == end;
    } else if (IsWord(value, "true")) {
      node.value_type = Node::ValueType::kTrue;
    } else if (IsWord(value, "false")) {
      node.value_type = Node::ValueType::kFalse;
    } else if (IsWord(value, "null")) {
      node.value_type = Node::ValueType::kNull;
    } else {
      return Error(fmt::format(
          "expected a value (a \"string\", a number, true, false or null){} at position {}, "
          "found {}",
          After(), value.pos, Describe(value)));
    }
    switch (node.op) {
      case Node::Op::kSw:
      case Node::Op::kCo:
      case Node::Op::kEw:
        if (node.value_type != Node::ValueType::kString) {
          return Error(
              fmt::format("'{}' needs a string value at position {}", NameOf(node.op), value.pos));
        }
        break;
      case Node::Op::kGt:
      case Node::Op::kGe:
      case Node::Op::kLt:
      case Node::Op::kLe:
        if (node.value_type != Node::ValueType::kString &&
            node.value_type != Node::ValueType::kNumber) {
          return Error(fmt::format("'{}' needs a string or number value at position {}",
                                   NameOf(node.op), value.pos));
        }
        break;
      default:
        break;
    }
    Next();
    return Add(std::move(node));
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  Filter& filter_;
};

absl::StatusOr<Filter> ParseFilter(std::string_view text) {
  if (text.size() > kMaxFilterLength) {
    return Error(fmt::format("longer than {} characters", kMaxFilterLength));
  }
  ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(text));
  Filter filter;
  FilterParser parser(std::move(tokens), filter);
  RETURN_IF_ERROR(parser.Parse());
  return filter;
}

namespace {

template <typename J>
const J* FindKey(const J& object, const std::string& key) {
  auto it = object.find(key);
  if (it != object.end()) return &*it;
  for (auto item = object.begin(); item != object.end(); ++item) {
    if (EqualsIgnoreCase(item.key(), key)) return &item.value();
  }
  return nullptr;
}

// Calls `f` on every value that `path[i..]` reaches from `v`, descending into every element of
// the arrays met on the way (and of an array at the end of the path). Stops at the first value
// for which `f` is true. `reached` becomes true when any value is reached.
template <typename J, typename F>
bool AnyValue(const J& v, const std::vector<std::string>& path, size_t i, const F& f,
              bool& reached) {
  if (v.is_array()) {
    for (const J& element : v) {
      if (AnyValue(element, path, i, f, reached)) return true;
    }
    return false;
  }
  if (i == path.size()) {
    reached = true;
    return f(v);
  }
  if (!v.is_object()) return false;
  const J* child = FindKey(v, path[i]);
  return child != nullptr && AnyValue(*child, path, i + 1, f, reached);
}

template <typename T>
int Sign(T a, T b) {
  return a < b ? -1 : (a > b ? 1 : 0);
}

// Order of the JSON value `v` relative to the literal of `n`; nullopt when not comparable.
template <typename J>
std::optional<int> Order(const Node& n, const J& v) {
  if (n.value_type == Node::ValueType::kNumber) {
    if (!v.is_number()) return std::nullopt;
    if (n.is_integer && v.is_number_unsigned()) {
      uint64_t u = v.template get<uint64_t>();
      if (n.integer < 0) return 1;
      return Sign(u, static_cast<uint64_t>(n.integer));
    }
    if (n.is_integer && v.is_number_integer()) return Sign(v.template get<int64_t>(), n.integer);
    return Sign(v.template get<double>(), n.number);
  }
  if (n.value_type == Node::ValueType::kString) {
    if (!v.is_string()) return std::nullopt;
    const std::string& s = v.template get_ref<const std::string&>();
    if (n.time) {
      absl::StatusOr<absl::Time> t = ParseRfc3339(s);
      if (t.ok()) return *t < *n.time ? -1 : (*t > *n.time ? 1 : 0);
    }
    int c = s.compare(n.text);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  return std::nullopt;
}

template <typename J>
bool Equal(const Node& n, const J& v) {
  switch (n.value_type) {
    case Node::ValueType::kString:
      return v.is_string() && v.template get_ref<const std::string&>() == n.text;
    case Node::ValueType::kNumber: {
      std::optional<int> o = Order(n, v);
      return o && *o == 0;
    }
    case Node::ValueType::kTrue:
      return v.is_boolean() && v.template get<bool>();
    case Node::ValueType::kFalse:
      return v.is_boolean() && !v.template get<bool>();
    case Node::ValueType::kNull:
      return v.is_null();
  }
  return false;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && EqualsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

bool EndsWithIgnoreCase(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && EqualsIgnoreCase(s.substr(s.size() - suffix.size()), suffix);
}

bool ContainsIgnoreCase(std::string_view s, std::string_view needle) {
  return LowerAscii(s).find(LowerAscii(needle)) != std::string::npos;
}

template <typename J>
bool CompareOne(const Node& n, const J& v) {
  switch (n.op) {
    case Node::Op::kEq:
    case Node::Op::kNe:  // handled by the caller as the negation of eq
      return Equal(n, v);
    case Node::Op::kSw:
    case Node::Op::kCo:
    case Node::Op::kEw: {
      if (!v.is_string()) return false;
      const std::string& s = v.template get_ref<const std::string&>();
      if (n.op == Node::Op::kSw) return StartsWithIgnoreCase(s, n.text);
      if (n.op == Node::Op::kEw) return EndsWithIgnoreCase(s, n.text);
      return ContainsIgnoreCase(s, n.text);
    }
    case Node::Op::kGt:
    case Node::Op::kGe:
    case Node::Op::kLt:
    case Node::Op::kLe: {
      std::optional<int> o = Order(n, v);
      if (!o) return false;
      if (n.op == Node::Op::kGt) return *o > 0;
      if (n.op == Node::Op::kGe) return *o >= 0;
      if (n.op == Node::Op::kLt) return *o < 0;
      return *o <= 0;
    }
  }
  return false;
}

template <typename J>
bool IsPresent(const J& v) {
  if (v.is_null()) return false;
  if (v.is_string()) return !v.template get_ref<const std::string&>().empty();
  if (v.is_object()) return !v.empty();
  return true;
}

}  // namespace

template <typename J>
bool Filter::Eval(int index, const J& value) const {
  const Node& n = nodes_[index];
  bool reached = false;
  switch (n.kind) {
    case Node::Kind::kAnd:
      for (int child : n.children) {
        if (!Eval(child, value)) return false;
      }
      return true;
    case Node::Kind::kOr:
      for (int child : n.children) {
        if (Eval(child, value)) return true;
      }
      return false;
    case Node::Kind::kNot:
      return !Eval(n.children[0], value);
    case Node::Kind::kPresent:
      return AnyValue(
          value, n.path, 0, [](const J& v) { return IsPresent(v); }, reached);
    case Node::Kind::kCompare: {
      bool any = AnyValue(
          value, n.path, 0, [&n](const J& v) { return CompareOne(n, v); }, reached);
      // An absent attribute equals null.
      bool eq_null_absent = n.value_type == Node::ValueType::kNull && !reached;
      if (n.op == Node::Op::kEq) return any || eq_null_absent;
      if (n.op == Node::Op::kNe) return !(any || eq_null_absent);
      return any;
    }
  }
  return false;
}

Filter::Filter() = default;
Filter::~Filter() = default;
Filter::Filter(const Filter&) = default;
Filter& Filter::operator=(const Filter&) = default;
Filter::Filter(Filter&&) noexcept = default;
Filter& Filter::operator=(Filter&&) noexcept = default;

bool Filter::Matches(const Json& value) const { return root_ < 0 || Eval(root_, value); }
bool Filter::Matches(const OrderedJson& value) const { return root_ < 0 || Eval(root_, value); }

void Filter::Print(int index, std::string& out) const {
  const Node& n = nodes_[index];
  switch (n.kind) {
    case Node::Kind::kAnd:
    case Node::Kind::kOr:
      out += '(';
      for (size_t i = 0; i < n.children.size(); ++i) {
        if (i > 0) out += n.kind == Node::Kind::kAnd ? " and " : " or ";
        Print(n.children[i], out);
      }
      out += ')';
      return;
    case Node::Kind::kNot: {
      const Node& child = nodes_[n.children[0]];
      bool parenthesised = child.kind == Node::Kind::kAnd || child.kind == Node::Kind::kOr;
      out += parenthesised ? "not " : "not (";
      Print(n.children[0], out);
      if (!parenthesised) out += ')';
      return;
    }
    case Node::Kind::kPresent:
    case Node::Kind::kCompare:
      for (size_t i = 0; i < n.path.size(); ++i) {
        if (i > 0) out += '.';
        out += n.path[i];
      }
      if (n.kind == Node::Kind::kPresent) {
        out += " pr";
        return;
      }
      out += ' ';
      out += NameOf(n.op);
      out += ' ';
      switch (n.value_type) {
        case Node::ValueType::kString:
          out += DumpJson(Json(n.text));
          break;
        case Node::ValueType::kNumber:
          out += n.text;
          break;
        case Node::ValueType::kTrue:
          out += "true";
          break;
        case Node::ValueType::kFalse:
          out += "false";
          break;
        case Node::ValueType::kNull:
          out += "null";
          break;
      }
      return;
  }
}

std::string Filter::ToString() const {
  std::string out;
  if (root_ >= 0) Print(root_, out);
  return out;
}

}  // namespace custos::audit
