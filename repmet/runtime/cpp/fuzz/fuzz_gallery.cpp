// Gallery::load (src/gallery.cpp) and the .npz/.npy reader under it (src/npz.cpp) on arbitrary
// bytes: it returns or throws repmet::Error; anything else (another exception, a crash, a leak,
// undefined behaviour) is a finding. Each input is read twice: as it is, and with the CRC-32 of
// its stored zip members made right (else a mutated .npy header is only ever refused as "bad CRC").
#include <vector>

#include <zlib.h>

#include "fuzz_common.h"
#include "repmet/errors.h"
#include "repmet/gallery.h"
#include "repmet/npz.h"

namespace {

uint64_t le(const std::vector<uint8_t>& b, std::size_t at, int n) {
  uint64_t value = 0;
  for (int i = n - 1; i >= 0; --i) value = value << 8 | b[at + i];
  return value;
}

// The central directory's CRC of each stored member set to its data's; false when nothing changed
// (or the zip is too damaged to find its members: then the reader refuses it anyway).
bool fix_crcs(std::vector<uint8_t>& zip) {
  if (zip.size() < 22) return false;
  std::size_t end = zip.size() - 22;
  while (le(zip, end, 4) != 0x06054b50) {
    if (end == 0) return false;
    --end;
  }
  bool changed = false;
  uint64_t at = le(zip, end + 16, 4);
  for (uint64_t e = 0, entries = le(zip, end + 10, 2); e < entries; ++e) {
    if (at + 46 > zip.size() || le(zip, at, 4) != 0x02014b50) break;
    const uint64_t size = le(zip, at + 20, 4), local = le(zip, at + 42, 4);
    if (le(zip, at + 10, 2) == 0 && local + 30 <= zip.size()) {
      const uint64_t data = local + 30 + le(zip, local + 26, 2) + le(zip, local + 28, 2);
      if (data <= zip.size() && zip.size() - data >= size) {
        const uint32_t crc = static_cast<uint32_t>(crc32_z(0L, zip.data() + data, size));
        for (int i = 0; i < 4; ++i) {
          changed |= zip[at + 16 + i] != static_cast<uint8_t>(crc >> (8 * i));
          zip[at + 16 + i] = static_cast<uint8_t>(crc >> (8 * i));
        }
      }
    }
    at += 46 + le(zip, at + 28, 2) + le(zip, at + 30, 2) + le(zip, at + 32, 2);
  }
  return changed;
}

void load(const uint8_t* data, std::size_t size) {
  const std::string path = repmet_fuzz::write_input("gallery.npz", data, size);
  try {
    repmet::Gallery gallery = repmet::Gallery::load(path);
    (void)gallery.size();
  } catch (const repmet::Error&) {
  }
  try {  // every member read, whatever its name and dtype (Gallery::load stops at the first odd one)
    for (const auto& [name, array] : repmet::read_npz(path)) {
      if (array.descr.size() > 1 && array.descr[1] == 'U') (void)array.strings();
    }
  } catch (const repmet::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  load(data, size);
  std::vector<uint8_t> fixed(data, data + size);
  if (fix_crcs(fixed)) load(fixed.data(), fixed.size());
  return 0;
}
