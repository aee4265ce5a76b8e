#pragma once

// Text placed into HTML, SVG or XML (Atom) that we write ourselves.

#include <string>
#include <string_view>

namespace custos {

// Escapes & < > " ' as character references: safe in element text and in quoted attribute
// values of HTML, SVG and XML alike.
std::string HtmlEscape(std::string_view text);

}  // namespace custos
