"""The artifact contract: what ``metric-export`` writes and every runtime reads, as its own
package, imported by export and the runtimes alike and importing neither (nor torch).

- :mod:`~repmet.artifact.schema`: the JSON Schema of ``metadata.json`` (the task decides what its
  preprocessing and graphs must hold).
- :mod:`~repmet.artifact.reader`: :class:`Artifact`, a folder opened and checked (schema,
  consistency, file hashes, the embedding fingerprint).
- :mod:`~repmet.artifact.writer`: the files' hashes and the fingerprint, completed once the
  graphs are written.
- :mod:`~repmet.artifact.fingerprint`: the embedding's fingerprint, from the graph files' bytes
  and the preprocessing.
- :mod:`~repmet.artifact.gallery_file`: the gallery ``.npz`` (without pickle, bounded before it
  is read: :mod:`~repmet.artifact.npz_headers`) and the label rule (:mod:`~repmet.artifact.labels`).

The input limits they apply are ``repmet/limits.json`` (:mod:`repmet.limits`), shared with the
C++ runtime and the training-side loaders, so they stay beside the package rather than in it."""
