// A small reader and writer of the zip container and of .npy arrays, for gallery.npz.
#include "repmet/npz.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <algorithm>
#include <cerrno>
#include <charconv>

#include <zlib.h>

#include "repmet/errors.h"
#include "repmet/limits.h"

namespace repmet {
namespace {

const std::string kRemedy = "enroll the classes again and save a new gallery";
constexpr uint64_t kMaxMembers = 16;  // a gallery has 5
constexpr std::size_t kMaxHeader = 65536;  // of a .npy header (numpy writes about 128 bytes)
constexpr int kMaxDims = 8;
// a member holds at most a gallery's representatives; the file adds its labels and counts
constexpr uint64_t kMaxMemberBytes = static_cast<uint64_t>(limits::kMaxGalleryBytes) + kMaxHeader;
constexpr uint64_t kMaxFileBytes = static_cast<uint64_t>(limits::kMaxGalleryBytes) + (256ull << 20);

uint64_t read_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

[[noreturn]] void not_npz(const std::string& path, const std::string& why) {
  fail(path + " is not a repmet gallery (cannot read it as .npz: " + why + "); " + kRemedy);
}

std::vector<uint8_t> read_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::is_regular_file(path, error)) {
    fail("gallery file " + path + " is missing; save one with save_gallery or metric-predict --save-gallery");
  }
  const uint64_t size = fs::file_size(path, error);
  if (error) fail("cannot read gallery " + path + " (" + error.message() + ")");
  if (size > kMaxFileBytes) {
    fail("gallery " + path + " is " + std::to_string(size) + " bytes, more than a gallery within the limits (" +
         std::to_string(kMaxFileBytes) + "); " + kRemedy);
  }
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> bytes(size);
  if (!in || !in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size))) {
    fail("cannot read gallery " + path + " (" + std::strerror(errno) + ")");
  }
  return bytes;
}

// Raw deflate data inflated into out[0, capacity), never past it: the bytes written. With
// ``whole``, the stream must end exactly there; else it stops when ``out`` is full (a peek at
// the .npy header).
uint64_t inflate_into(const uint8_t* in, uint64_t in_size, uint8_t* out, uint64_t capacity, bool whole,
                      const std::string& path) {
  z_stream stream{};
  if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) not_npz(path, "zlib cannot start");
  constexpr uint64_t kChunk = 1u << 30;  // zlib counts in 32 bits
  uint64_t in_done = 0, out_done = 0;
  int status = Z_OK;
  while (status == Z_OK && out_done < capacity) {
    stream.next_in = const_cast<Bytef*>(in + in_done), stream.avail_in = static_cast<uInt>(std::min(kChunk, in_size - in_done));
    stream.next_out = out + out_done, stream.avail_out = static_cast<uInt>(std::min(kChunk, capacity - out_done));
    const uInt in_before = stream.avail_in, out_before = stream.avail_out;
    status = inflate(&stream, Z_NO_FLUSH);
    in_done += in_before - stream.avail_in, out_done += out_before - stream.avail_out;
    if (status == Z_BUF_ERROR && in_before == stream.avail_in && out_before == stream.avail_out) break;  // stuck
  }
  if (whole && status == Z_OK && out_done == capacity) {  // full: the stream must end here, holding no more
    uint8_t extra = 0;
    stream.next_in = const_cast<Bytef*>(in + in_done), stream.avail_in = static_cast<uInt>(std::min(kChunk, in_size - in_done));
    stream.next_out = &extra, stream.avail_out = 1;
    status = inflate(&stream, Z_NO_FLUSH);
    if (stream.avail_out == 0) status = Z_DATA_ERROR;
  }
  inflateEnd(&stream);
  if (whole && (status != Z_STREAM_END || out_done != capacity)) {
    not_npz(path, "a deflated entry is damaged or holds another size than it declares");
  }
  if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR) not_npz(path, "a deflated entry is damaged");
  return out_done;
}

// "123" -> 123, or -1 for anything but 1..18 decimal digits.
int64_t whole_number(const std::string& text) {
  if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) return -1;
  int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

std::string trimmed(const std::string& text) {
  auto first = text.find_first_not_of(" \t\n");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\n") - first + 1);
}

// The bytes of one item of ``descr`` (numpy's "<f4", "|u1", "<U12"...), or -1 if this reader
// does not read that dtype (plain little-endian or byte-sized numbers and unicode only).
int64_t item_size(const std::string& descr) {
  if (descr.size() < 3 || std::string("<|=").find(descr[0]) == std::string::npos ||
      std::string("biufU").find(descr[1]) == std::string::npos) {
    return -1;
  }
  int64_t n = whole_number(descr.substr(2));
  if (n < 1 || n > 1'000'000) return -1;
  return descr[1] == 'U' ? n * 4 : n;
}

// The .npy header at the start of ``bytes`` (the whole header, or more): descr and shape
// checked, and the header's length. ``where`` names the member in errors.
NpzFile::Member parse_npy_header(const uint8_t* bytes, std::size_t available, const std::string& where) {
  auto bad = [&](const std::string& why) { fail(where + ": its .npy header " + why + "; " + kRemedy); };
  if (available < 10 || std::memcmp(bytes, "\x93NUMPY", 6) != 0) fail(where + " is not a .npy array; " + kRemedy);
  const int major = bytes[6];
  if (major < 1 || major > 3) bad("has version " + std::to_string(major) + ", not one numpy writes");
  const std::size_t start = major == 1 ? 10 : 12;
  if (available < start) bad("is cut short");
  const uint64_t header_len = major == 1 ? read_le(&bytes[8], 2) : read_le(&bytes[8], 4);
  if (header_len > kMaxHeader) bad("is " + std::to_string(header_len) + " bytes long, more than " + std::to_string(kMaxHeader));
  if (start + header_len > available) bad("is cut short");
  const std::string header(bytes + start, bytes + start + header_len);
  auto value_of = [&](const std::string& key) {
    auto at = header.find("'" + key + "':");
    if (at == std::string::npos) bad("lacks '" + key + "'");
    return trimmed(header.substr(at + key.size() + 3));
  };
  NpzFile::Member member;
  std::string descr = value_of("descr");
  auto close = descr.find('\'', 1);
  if (descr.empty() || descr[0] != '\'' || close == std::string::npos) bad("has a 'descr' that is not a quoted dtype");
  member.descr = descr.substr(1, close - 1);
  if (member.descr.find('O') != std::string::npos) fail(where + " holds Python objects, not a plain array; " + kRemedy);
  const int64_t item = item_size(member.descr);
  if (item < 0) bad("has the dtype '" + member.descr.substr(0, 20) + "', not one a gallery holds");
  if (value_of("fortran_order").rfind("False", 0) != 0) fail(where + ": Fortran-ordered arrays are not read; " + kRemedy);
  std::string shape = value_of("shape");
  auto open = shape.find('('), end = shape.find(')');
  if (open != 0 || end == std::string::npos) bad("has a 'shape' that is not a tuple");
  std::stringstream items(shape.substr(1, end - 1));
  uint64_t bytes_total = static_cast<uint64_t>(item);
  for (std::string text; std::getline(items, text, ',');) {
    text = trimmed(text);
    if (text.empty()) continue;  // "(3,)"
    const int64_t dim = whole_number(text);
    if (dim < 0) bad("has a 'shape' with '" + text.substr(0, 20) + "', not a whole number");
    if (member.shape.size() == kMaxDims) bad("has more than " + std::to_string(kMaxDims) + " dimensions");
    member.shape.push_back(dim);
    // the product stays below kMaxMemberBytes (< 2^34) times a dimension (< 2^60): no overflow
    bytes_total = dim == 0 ? 0 : std::min<uint64_t>(bytes_total * static_cast<uint64_t>(dim), kMaxMemberBytes + 1);
  }
  member.header_bytes = start + header_len;
  if (bytes_total > static_cast<uint64_t>(limits::kMaxGalleryBytes)) {
    bad("declares an array of more than the limit of " + std::to_string(limits::kMaxGalleryBytes) + " bytes");
  }
  member.bytes = member.header_bytes + bytes_total;
  return member;
}

std::string npy_bytes(const NpyArray& array) {
  std::string shape = "(";
  for (auto d : array.shape) shape += std::to_string(d) + ", ";
  if (array.shape.size() > 1) shape.resize(shape.size() - 2);
  if (array.shape.size() == 1) shape.resize(shape.size() - 1);
  shape += ")";
  std::string header = "{'descr': '" + array.descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  put_le(out, header.size(), 2);
  out += header;
  out.append(reinterpret_cast<const char*>(array.data.data()), array.data.size());
  return out;
}

std::u32string utf8_to_utf32(const std::string& text) {
  std::u32string out;
  for (std::size_t i = 0; i < text.size();) {
    unsigned char c = text[i];
    int extra = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
    char32_t cp = extra == 0 ? c : extra == 1 ? c & 0x1F : extra == 2 ? c & 0x0F : c & 0x07;
    for (int j = 1; j <= extra && i + j < text.size(); ++j) cp = (cp << 6) | (text[i + j] & 0x3F);
    out.push_back(cp);
    i += 1 + extra;
  }
  return out;
}

std::string utf32_to_utf8(const std::u32string& text) {
  std::string out;
  for (char32_t cp : text) {
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;  // not a character: U+FFFD, as a decoder shows it
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6))), out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12))), out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18))), out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F))), out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  return out;
}

}  // namespace

int64_t NpyArray::size() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::vector<std::string> NpyArray::strings() const {
  if (descr.size() < 3 || descr[1] != 'U') return {};
  const int64_t width = whole_number(descr.substr(2));
  if (width < 1 || size() < 0 || data.size() != static_cast<uint64_t>(size()) * width * 4) return {};
  std::vector<std::string> out;
  for (int64_t i = 0; i < size(); ++i) {
    std::u32string item;
    for (int64_t j = 0; j < width; ++j) item.push_back(static_cast<char32_t>(read_le(&data[(i * width + j) * 4], 4)));
    // as numpy reads it: only trailing NULs are padding; one inside is the string's (and refused as a label)
    while (!item.empty() && item.back() == 0) item.pop_back();
    out.push_back(utf32_to_utf8(item));
  }
  return out;
}

NpyArray NpyArray::from_strings(const std::vector<std::string>& items, std::vector<int64_t> shape) {
  std::vector<std::u32string> wide;
  std::size_t width = 1;
  for (const auto& item : items) {
    wide.push_back(utf8_to_utf32(item));
    width = std::max(width, wide.back().size());
  }
  NpyArray array{"<U" + std::to_string(width), std::move(shape), std::vector<uint8_t>(items.size() * width * 4, 0)};
  for (std::size_t i = 0; i < wide.size(); ++i) {
    for (std::size_t j = 0; j < wide[i].size(); ++j) {
      for (int b = 0; b < 4; ++b) array.data[(i * width + j) * 4 + b] = static_cast<uint8_t>(wide[i][j] >> (8 * b));
    }
  }
  return array;
}

NpzFile::NpzFile(const std::string& path) : path_(path), zip_(read_file(path)) {
  const std::vector<uint8_t>& zip = zip_;
  if (zip.size() < 22 || zip[0] != 'P' || zip[1] != 'K') {
    fail(path + " is not a repmet gallery (not an .npz file); " + kRemedy);
  }
  // the end of central directory record, found from the end (a comment may follow it)
  std::size_t end = zip.size() - 22;
  while (read_le(&zip[end], 4) != 0x06054b50) {
    if (end == 0 || zip.size() - end > 22 + 65535) not_npz(path, "no zip directory");
    --end;
  }
  uint64_t entries = read_le(&zip[end + 10], 2), directory = read_le(&zip[end + 16], 4);
  if ((entries == 0xFFFF || directory == 0xFFFFFFFF) && end >= 20 && read_le(&zip[end - 20], 4) == 0x07064b50) {
    uint64_t record = read_le(&zip[end - 12], 8);  // the zip64 end of central directory record
    if (record > zip.size() || zip.size() - record < 56) not_npz(path, "a damaged zip64 directory");
    entries = read_le(&zip[record + 32], 8), directory = read_le(&zip[record + 48], 8);
  }
  if (entries > kMaxMembers) {
    fail("gallery " + path + " holds " + std::to_string(entries) + " files; a gallery has 5; " + kRemedy);
  }
  uint64_t at = directory;
  for (uint64_t e = 0; e < entries; ++e) {
    if (at > zip.size() || zip.size() - at < 46 || read_le(&zip[at], 4) != 0x02014b50) not_npz(path, "a damaged zip directory");
    Member member;
    member.method = static_cast<int>(read_le(&zip[at + 10], 2));
    member.crc = static_cast<uint32_t>(read_le(&zip[at + 16], 4));
    uint64_t packed = read_le(&zip[at + 20], 4), unpacked = read_le(&zip[at + 24], 4);
    const uint64_t name_len = read_le(&zip[at + 28], 2), extra_len = read_le(&zip[at + 30], 2),
                   comment_len = read_le(&zip[at + 32], 2);
    uint64_t local = read_le(&zip[at + 42], 4);
    const uint64_t extra_end = at + 46 + name_len + extra_len;
    if (extra_end > zip.size()) not_npz(path, "a damaged zip directory");
    std::string name(zip.begin() + at + 46, zip.begin() + at + 46 + name_len);
    for (uint64_t x = at + 46 + name_len; x + 4 <= extra_end;) {
      const uint64_t id = read_le(&zip[x], 2), len = read_le(&zip[x + 2], 2);
      uint64_t field = x + 4;
      const uint64_t field_end = std::min(field + len, extra_end);
      auto next64 = [&](uint64_t& value) {  // zip64 sizes and offset, each present only when its 32-bit field is full
        if (value != 0xFFFFFFFF) return;
        if (field + 8 > field_end) not_npz(path, "a damaged zip64 field");
        value = read_le(&zip[field], 8), field += 8;
      };
      if (id == 0x0001) next64(unpacked), next64(packed), next64(local);
      x += 4 + len;
    }
    at = extra_end + comment_len;
    if (name.size() > 4 && name.substr(name.size() - 4) == ".npy") name.resize(name.size() - 4);
    const std::string where = "gallery " + path + " (" + name + ")";
    // sizes first: nothing is allocated or inflated for a member that declares too much
    if (unpacked > kMaxMemberBytes) {
      // in the table's terms (its header, at most kMaxHeader bytes, is not counted against the limit)
      fail(where + " declares " + std::to_string(unpacked) + " bytes, more than the limit of " +
           std::to_string(limits::kMaxGalleryBytes) + " for a gallery's arrays; " + kRemedy);
    }
    if (local > zip.size() || zip.size() - local < 30 || read_le(&zip[local], 4) != 0x04034b50) {
      not_npz(path, "a damaged zip entry");
    }
    member.data = local + 30 + read_le(&zip[local + 26], 2) + read_le(&zip[local + 28], 2);
    if (member.data > zip.size() || zip.size() - member.data < packed) not_npz(path, "an entry runs past the end of the file");
    member.packed = packed;
    if (member.method == 0 && packed != unpacked) not_npz(path, "a stored entry declares two sizes");
    if (member.method != 0 && member.method != 8) {
      not_npz(path, "an entry is compressed with zip method " + std::to_string(member.method));
    }
    // the .npy header, from the member's first bytes (inflating only those)
    std::vector<uint8_t> head(std::min<uint64_t>(unpacked, kMaxHeader + 12));
    if (member.method == 0) {
      std::copy_n(zip.begin() + member.data, head.size(), head.begin());
    } else {
      head.resize(inflate_into(&zip[member.data], packed, head.data(), head.size(), false, path));
    }
    Member header = parse_npy_header(head.data(), head.size(), where);
    if (header.bytes != unpacked) {
      fail(where + " is damaged: the zip declares " + std::to_string(unpacked) + " bytes but its .npy header describes " +
           std::to_string(header.bytes) + "; " + kRemedy);
    }
    member.descr = std::move(header.descr), member.shape = std::move(header.shape);
    member.bytes = unpacked, member.header_bytes = header.header_bytes;
    if (members_.count(name)) not_npz(path, name + " appears twice");
    members_.emplace(name, std::move(member));
  }
}

NpyArray NpzFile::read(const std::string& name) const {
  auto found = members_.find(name);
  if (found == members_.end()) fail(path_ + " is not a repmet gallery (it lacks " + name + "); " + kRemedy);
  const Member& m = found->second;
  std::vector<uint8_t> bytes;
  if (m.method == 0) {
    bytes.assign(zip_.begin() + m.data, zip_.begin() + m.data + m.packed);
  } else {
    bytes.resize(m.bytes);  // the declared size, checked against the limits and the header
    inflate_into(&zip_[m.data], m.packed, bytes.data(), bytes.size(), true, path_);
  }
  if (crc32_z(0L, bytes.data(), bytes.size()) != m.crc) {
    fail("gallery " + path_ + " is damaged (" + name + ": bad CRC); " + kRemedy);
  }
  NpyArray array{m.descr, m.shape, {}};
  array.data.assign(bytes.begin() + m.header_bytes, bytes.end());
  return array;
}

std::map<std::string, NpyArray> read_npz(const std::string& path) {
  NpzFile file(path);
  std::map<std::string, NpyArray> arrays;
  for (const auto& [name, member] : file.members()) arrays[name] = file.read(name);
  return arrays;
}

void write_npz_atomically(const std::string& path, const std::map<std::string, NpyArray>& arrays) {
  std::string zip, directory;
  for (const auto& [key, array] : arrays) {
    std::string name = key + ".npy", bytes = npy_bytes(array);
    uint32_t crc = crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size()));
    std::size_t offset = zip.size();
    put_le(zip, 0x04034b50, 4), put_le(zip, 20, 2), put_le(zip, 0, 2), put_le(zip, 0, 2);  // version, flags, stored
    put_le(zip, 0, 2), put_le(zip, 0x21, 2);  // time, date (1980-01-01)
    put_le(zip, crc, 4), put_le(zip, bytes.size(), 4), put_le(zip, bytes.size(), 4);
    put_le(zip, name.size(), 2), put_le(zip, 0, 2);
    zip += name + bytes;
    put_le(directory, 0x02014b50, 4), put_le(directory, 20, 2), put_le(directory, 20, 2), put_le(directory, 0, 2);
    put_le(directory, 0, 2), put_le(directory, 0, 2), put_le(directory, 0x21, 2);
    put_le(directory, crc, 4), put_le(directory, bytes.size(), 4), put_le(directory, bytes.size(), 4);
    put_le(directory, name.size(), 2), put_le(directory, 0, 2), put_le(directory, 0, 2);
    put_le(directory, 0, 2), put_le(directory, 0, 2), put_le(directory, 0, 4), put_le(directory, offset, 4);
    directory += name;
  }
  std::size_t directory_at = zip.size();
  zip += directory;
  put_le(zip, 0x06054b50, 4), put_le(zip, 0, 2), put_le(zip, 0, 2);
  put_le(zip, arrays.size(), 2), put_le(zip, arrays.size(), 2);
  put_le(zip, directory.size(), 4), put_le(zip, directory_at, 4), put_le(zip, 0, 2);

  namespace fs = std::filesystem;
  fs::path target(path), temporary = target;
  temporary += ".tmp" + std::to_string(std::hash<std::string>{}(path + std::to_string(zip.size())));
  {
    std::ofstream out(temporary, std::ios::binary);
    out.write(zip.data(), static_cast<std::streamsize>(zip.size()));
    out.flush();
    if (!out) {
      std::error_code ignored;
      fs::remove(temporary, ignored);
      fail("cannot save the gallery to " + path + " (cannot write " + temporary.string() +
           "); the file there before, if any, is unchanged");
    }
  }
  std::error_code error;
  fs::rename(temporary, target, error);
  if (error) {
    fs::remove(temporary, error);
    fail("cannot save the gallery to " + path + " (" + error.message() + "); the file there before, if any, is unchanged");
  }
}

}  // namespace repmet
