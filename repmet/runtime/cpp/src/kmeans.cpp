// k-means with k-means++ seeding, the algorithm of repmet/numpy_kmeans.py in double
// precision. Its random draws come from std::mt19937, not numpy's generator, so with more
// shots than representatives the C++ and Python galleries may pick other (equally valid)
// centres; with at most K shots every shot is a representative in both.
#include <algorithm>
#include <limits>
#include <random>

#include "repmet/errors.h"
#include "repmet/gallery.h"

namespace repmet {
namespace {

double squared_distance(const double* a, const double* b, int dim) {
  double sum = 0.0;
  for (int d = 0; d < dim; ++d) sum += (a[d] - b[d]) * (a[d] - b[d]);
  return sum;
}

}  // namespace

std::vector<float> kmeans(const std::vector<float>& input, int n, int dim, int k, int seed, int iterations) {
  if (k < 1 || k > n) fail("k-means needs 1 <= k <= number of points, got k=" + std::to_string(k) + " for " + std::to_string(n) + " points");
  std::vector<double> points(input.begin(), input.end());
  std::vector<double> centers(static_cast<std::size_t>(k) * dim, 0.0);
  if (k == n) {  // every point is a centre
    centers = points;
  } else if (k == 1) {
    for (int i = 0; i < n; ++i) {
      for (int d = 0; d < dim; ++d) centers[d] += points[static_cast<std::size_t>(i) * dim + d];
    }
    for (int d = 0; d < dim; ++d) centers[d] /= n;
  } else {
    std::mt19937 random(static_cast<uint32_t>(seed));
    std::vector<int> chosen{std::uniform_int_distribution<int>(0, n - 1)(random)};
    std::vector<double> closest(n);
    for (int i = 0; i < n; ++i) closest[i] = squared_distance(&points[i * dim], &points[chosen[0] * dim], dim);
    while (static_cast<int>(chosen.size()) < k) {
      double total = 0.0;
      for (double c : closest) total += c;
      int next = 0;
      if (total <= 0) {
        while (std::find(chosen.begin(), chosen.end(), next) != chosen.end()) ++next;
      } else {
        next = std::discrete_distribution<int>(closest.begin(), closest.end())(random);
      }
      chosen.push_back(next);
      for (int i = 0; i < n; ++i) {
        closest[i] = std::min(closest[i], squared_distance(&points[i * dim], &points[next * dim], dim));
      }
    }
    for (int c = 0; c < k; ++c) std::copy_n(&points[chosen[c] * dim], dim, &centers[c * dim]);
    std::vector<int> assignment(n, -1);
    for (int iteration = 0; iteration < iterations; ++iteration) {
      std::vector<int> updated(n);
      std::vector<double> best(n);
      for (int i = 0; i < n; ++i) {
        best[i] = std::numeric_limits<double>::infinity();
        for (int c = 0; c < k; ++c) {
          double d = squared_distance(&points[i * dim], &centers[c * dim], dim);
          if (d < best[i]) best[i] = d, updated[i] = c;
        }
      }
      for (int c = 0; c < k; ++c) {  // an empty cluster takes the point farthest from its centre
        if (std::find(updated.begin(), updated.end(), c) != updated.end()) continue;
        int farthest = static_cast<int>(std::max_element(best.begin(), best.end()) - best.begin());
        updated[farthest] = c, best[farthest] = 0.0;
      }
      std::vector<double> sums(static_cast<std::size_t>(k) * dim, 0.0);
      std::vector<int> sizes(k, 0);
      for (int i = 0; i < n; ++i) {
        ++sizes[updated[i]];
        for (int d = 0; d < dim; ++d) sums[updated[i] * dim + d] += points[i * dim + d];
      }
      for (int c = 0; c < k; ++c) {
        for (int d = 0; d < dim; ++d) centers[c * dim + d] = sums[c * dim + d] / sizes[c];
      }
      if (updated == assignment) break;
      assignment = updated;
    }
  }
  return std::vector<float>(centers.begin(), centers.end());
}

}  // namespace repmet
