// A small reader and writer of the zip container and of .npy arrays, for gallery.npz.
#include "repmet/npz.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <zlib.h>

#include "repmet/errors.h"

namespace repmet {
namespace {

const std::string kRemedy = "enroll the classes again and save a new gallery";

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
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("gallery file " + path + " is missing; save one with save_gallery or metric-predict --save-gallery");
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<uint8_t> inflate_raw(const uint8_t* data, std::size_t size, std::size_t expected, const std::string& path) {
  std::vector<uint8_t> out(expected);
  z_stream stream{};
  if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) not_npz(path, "zlib cannot start");
  stream.next_in = const_cast<Bytef*>(data), stream.avail_in = static_cast<uInt>(size);
  stream.next_out = out.data(), stream.avail_out = static_cast<uInt>(expected);
  int status = inflate(&stream, Z_FINISH);
  inflateEnd(&stream);
  if (status != Z_STREAM_END || stream.total_out != expected) not_npz(path, "a deflated entry is damaged");
  return out;
}

// One .npy file's bytes -> the array.
NpyArray parse_npy(const std::vector<uint8_t>& bytes, const std::string& where) {
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) fail(where + " is not a .npy array");
  int major = bytes[6];
  std::size_t header_len = major == 1 ? read_le(&bytes[8], 2) : read_le(&bytes[8], 4);
  std::size_t start = major == 1 ? 10 : 12;
  if (start + header_len > bytes.size()) fail(where + ": its .npy header is cut short");
  std::string header(bytes.begin() + start, bytes.begin() + start + header_len);
  auto value_of = [&](const std::string& key) {
    auto at = header.find("'" + key + "':");
    if (at == std::string::npos) fail(where + ": its .npy header lacks " + key);
    return header.substr(at + key.size() + 3);
  };
  NpyArray array;
  std::string descr = value_of("descr");
  auto quote = descr.find('\'');
  array.descr = descr.substr(quote + 1, descr.find('\'', quote + 1) - quote - 1);
  if (value_of("fortran_order").find("False") > 2) fail(where + ": Fortran-ordered arrays are not read");
  std::string shape = value_of("shape");
  shape = shape.substr(shape.find('(') + 1, shape.find(')') - shape.find('(') - 1);
  std::stringstream items(shape);
  for (std::string item; std::getline(items, item, ',');) {
    if (item.find_first_not_of(' ') != std::string::npos) array.shape.push_back(std::stoll(item));
  }
  if (array.descr.find('O') != std::string::npos) {
    fail(where + " holds Python objects, not a plain array; " + kRemedy);
  }
  std::size_t item_size = std::stoul(array.descr.substr(2));
  if (array.descr[1] == 'U') item_size *= 4;
  std::size_t payload = static_cast<std::size_t>(array.size()) * item_size;
  if (start + header_len + payload != bytes.size()) fail(where + ": its data do not match its shape");
  array.data.assign(bytes.begin() + start + header_len, bytes.end());
  return array;
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
  std::size_t width = std::stoul(descr.substr(2));
  std::vector<std::string> out;
  for (int64_t i = 0; i < size(); ++i) {
    std::u32string item;
    for (std::size_t j = 0; j < width; ++j) {
      char32_t cp = static_cast<char32_t>(read_le(&data[(i * width + j) * 4], 4));
      if (cp == 0) break;
      item.push_back(cp);
    }
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

std::map<std::string, NpyArray> read_npz(const std::string& path) {
  std::vector<uint8_t> zip = read_file(path);
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
    if (record + 56 > zip.size()) not_npz(path, "a damaged zip64 directory");
    entries = read_le(&zip[record + 32], 8), directory = read_le(&zip[record + 48], 8);
  }
  std::map<std::string, NpyArray> arrays;
  std::size_t at = directory;
  for (uint64_t e = 0; e < entries; ++e) {
    if (at + 46 > zip.size() || read_le(&zip[at], 4) != 0x02014b50) not_npz(path, "a damaged zip directory");
    int method = static_cast<int>(read_le(&zip[at + 10], 2));
    uint32_t crc = static_cast<uint32_t>(read_le(&zip[at + 16], 4));
    uint64_t packed = read_le(&zip[at + 20], 4), unpacked = read_le(&zip[at + 24], 4);
    std::size_t name_len = read_le(&zip[at + 28], 2), extra_len = read_le(&zip[at + 30], 2),
                comment_len = read_le(&zip[at + 32], 2);
    uint64_t local = read_le(&zip[at + 42], 4);
    if (at + 46 + name_len + extra_len > zip.size()) not_npz(path, "a damaged zip directory");
    std::string name(zip.begin() + at + 46, zip.begin() + at + 46 + name_len);
    for (std::size_t x = at + 46 + name_len; x + 4 <= at + 46 + name_len + extra_len;) {
      std::size_t id = read_le(&zip[x], 2), len = read_le(&zip[x + 2], 2), field = x + 4;
      if (id == 0x0001) {  // zip64 sizes and offset, each present only when its 32-bit field is full
        if (unpacked == 0xFFFFFFFF) unpacked = read_le(&zip[field], 8), field += 8;
        if (packed == 0xFFFFFFFF) packed = read_le(&zip[field], 8), field += 8;
        if (local == 0xFFFFFFFF) local = read_le(&zip[field], 8);
      }
      x += 4 + len;
    }
    at += 46 + name_len + extra_len + comment_len;
    if (local + 30 > zip.size() || read_le(&zip[local], 4) != 0x04034b50) not_npz(path, "a damaged zip entry");
    std::size_t data = local + 30 + read_le(&zip[local + 26], 2) + read_le(&zip[local + 28], 2);
    if (data + packed > zip.size()) not_npz(path, "an entry runs past the end of the file");
    std::vector<uint8_t> bytes;
    if (method == 0) {
      bytes.assign(zip.begin() + data, zip.begin() + data + packed);
    } else if (method == 8) {
      bytes = inflate_raw(&zip[data], packed, unpacked, path);
    } else {
      not_npz(path, "an entry is compressed with zip method " + std::to_string(method));
    }
    if (crc32(0L, bytes.data(), static_cast<uInt>(bytes.size())) != crc) {
      fail("gallery " + path + " is damaged (" + name + ": bad CRC); " + kRemedy);
    }
    if (name.size() > 4 && name.substr(name.size() - 4) == ".npy") name.resize(name.size() - 4);
    arrays[name] = parse_npy(bytes, "gallery " + path + " (" + name + ")");
  }
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
