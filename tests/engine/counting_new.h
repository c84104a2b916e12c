// A replacement operator new that counts allocations while g_counting is set: tests use it to
// prove that Session::run() allocates nothing. Include it in exactly one source file of a test
// binary (it defines the replaceable allocation functions).
#pragma once
#include <atomic>
#include <cstdlib>
#include <new>

// The replacement new/delete pair uses malloc/free consistently; GCC cannot see that across the
// replacement.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
static std::atomic<bool> g_counting{false};
static std::atomic<long> g_news{0};
// Every replaceable form is replaced, so each allocation and its release use malloc/free.
static void* counted_malloc(size_t n) noexcept {
  if (g_counting.load(std::memory_order_relaxed)) g_news.fetch_add(1);
  return std::malloc(n ? n : 1);
}
void* operator new(size_t n) {
  if (void* p = counted_malloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) { return operator new(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
