from repmet.ops.distances import CosineDistance, Distance, SquaredEuclideanDistance, create_distance

__all__ = ["CosineDistance", "Distance", "SquaredEuclideanDistance", "create_distance"]
