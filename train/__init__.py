"""Training stage: data discovery and split, model zoo, feature cache, train loop, asl-train."""
