// Cost of one Argon2id password hash and verify, i.e. of one password sign-in on a worker thread.
// Defaults are the shipped settings (m=19456 KiB, t=2); set CUSTOS_ARGON2_MEMORY_KIB and
// CUSTOS_ARGON2_ITERATIONS to measure others:
//
//   CUSTOS_ARGON2_MEMORY_KIB=65536 CUSTOS_ARGON2_ITERATIONS=3 ./argon2_bench

#include <benchmark/benchmark.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "crypto/password_hasher.h"

namespace custos::crypto {
namespace {

// nullopt when the variable is set but not a whole number.
template <typename T>
std::optional<T> EnvOr(const char* name, T fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  T value{};
  const char* end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

// Reads the parameters from the environment; on a bad value says so and returns nullopt.
std::optional<Argon2Params> ParamsFromEnv(benchmark::State& state) {
  Argon2Params defaults;
  auto memory = EnvOr<int64_t>("CUSTOS_ARGON2_MEMORY_KIB", defaults.memory_kib);
  auto iterations = EnvOr<int>("CUSTOS_ARGON2_ITERATIONS", defaults.iterations);
  if (!memory || !iterations) {
    state.SkipWithError("CUSTOS_ARGON2_MEMORY_KIB / CUSTOS_ARGON2_ITERATIONS must be integers");
    return std::nullopt;
  }
  Argon2Params params{.memory_kib = *memory, .iterations = *iterations};
  state.SetLabel(fmt::format("m={}KiB t={} p=1", params.memory_kib, params.iterations));
  return params;
}

void BM_Argon2idHash(benchmark::State& state) {
  std::optional<Argon2Params> params = ParamsFromEnv(state);
  if (!params) return;
  PasswordHasher hasher(*params);
  for (auto _ : state) {
    absl::StatusOr<std::string> encoded = hasher.Hash("correct horse battery staple");
    if (!encoded.ok()) {
      state.SkipWithError(std::string(encoded.status().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(encoded);
  }
}
BENCHMARK(BM_Argon2idHash)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Argon2idVerify(benchmark::State& state) {
  std::optional<Argon2Params> params = ParamsFromEnv(state);
  if (!params) return;
  PasswordHasher hasher(*params);
  absl::StatusOr<std::string> encoded = hasher.Hash("correct horse battery staple");
  if (!encoded.ok()) {
    state.SkipWithError(std::string(encoded.status().message()).c_str());
    return;
  }
  for (auto _ : state) {
    bool ok = hasher.Verify(*encoded, "correct horse battery staple");
    if (!ok) {
      state.SkipWithError("Verify rejected the right password");
      break;
    }
    benchmark::DoNotOptimize(ok);
  }
}
BENCHMARK(BM_Argon2idVerify)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace custos::crypto
