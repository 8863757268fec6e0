"""The gallery index seam: exact search against a naive reference on real Omniglot embeddings,
an index plugged in from outside (as faiss will be) used by classify and rebuilt on every
change, and an unknown index refused by name."""

import numpy as np
import pytest

from repmet.errors import UserError
from repmet.runtime import FewShotClassifier
from repmet.runtime.gallery_index import GALLERY_INDEXES, GalleryIndex, NearestClasses, index_names

TOLERANCE = 1e-4  # posteriors in [0, 1], as export verification allows


@pytest.fixture(scope="module")
def enrolled(omniglot_artifact, omniglot_images):
    support, queries = omniglot_images
    classifier = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime", index="exact")
    for folder in sorted(support.iterdir()):
        classifier.enroll(folder.name, sorted(folder.iterdir()))
    return classifier, classifier.embed(queries)


def naive_top_k(embeddings, representatives, sigma, top_k):
    """Per query, per class: the smallest squared distance over its representatives, a softmax
    of -d / (2 sigma^2), then the classes sorted by it (loops, as the paper writes it)."""
    rows = []
    for x in embeddings.astype(np.float64):
        logits = [-min(float(((x - r) ** 2).sum()) for r in reps) / (2 * sigma * sigma) for reps in representatives]
        p = np.exp(np.array(logits) - max(logits))
        p /= p.sum()
        order = sorted(range(len(p)), key=lambda c: -p[c])[:top_k]
        rows.append((order, p[order]))
    return rows


def test_the_exact_index_ranks_as_the_naive_reference(enrolled):
    classifier, embeddings = enrolled
    gallery, index = classifier.galleries.snapshot()
    assert index.name == "exact" and index.gallery is gallery
    found = index.nearest(embeddings, top_k=3)
    sigma = float(classifier.artifact.metadata["head"]["sigma"])
    reference = naive_top_k(embeddings, gallery.representatives, sigma, 3)
    assert found.classes.shape == found.posteriors.shape == (len(embeddings), 3)
    for row, (classes, posteriors), (ref_classes, ref_posteriors) in zip(range(len(embeddings)), zip(
            found.classes, found.posteriors), reference):
        assert np.allclose(posteriors, ref_posteriors, atol=TOLERANCE), row
        # the same classes, except where two posteriors are within TOLERANCE (a tie either order may break)
        for c, ref_c, p in zip(classes, ref_classes, ref_posteriors):
            assert c == ref_c or np.isclose(p, ref_posteriors, atol=TOLERANCE).sum() > 1, row
    assert np.all(np.diff(found.posteriors, axis=1) <= 0), "most probable first"


class ShortlistIndex(GalleryIndex):
    """What an approximate index does, in numpy: look at the ``SHORTLIST`` classes whose first
    representative is nearest, and give every other class posterior 0."""

    name = "shortlist-test"
    SHORTLIST = 2
    built = 0

    def __init__(self, gallery, head):
        super().__init__(gallery, head)
        ShortlistIndex.built += 1

    def posteriors(self, embeddings):
        reps = self.gallery.representatives
        first = ((embeddings[:, None, :] - reps[None, :, 0, :]) ** 2).sum(-1)
        shortlist = np.argsort(first, axis=1)[:, :self.SHORTLIST]
        out = np.zeros((len(embeddings), len(reps)), np.float32)
        for row, classes in enumerate(shortlist):
            _, posteriors = self.head.run(embeddings[row:row + 1], reps[classes])
            out[row, classes] = posteriors[0]
        return out


def test_an_index_plugs_in_by_name_is_rebuilt_on_every_change_and_serves_classify(omniglot_artifact, omniglot_images,
                                                                                   enrolled, monkeypatch):
    monkeypatch.setitem(GALLERY_INDEXES._entries, ShortlistIndex.name, ShortlistIndex)
    assert ShortlistIndex.name in index_names()
    support, queries = omniglot_images
    classifier = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime", index=ShortlistIndex.name)
    before = ShortlistIndex.built
    folders = sorted(support.iterdir())
    for folder in folders:
        classifier.enroll(folder.name, sorted(folder.iterdir()))
    assert ShortlistIndex.built == before + len(folders), "one new index per enroll"
    gallery, index = classifier.galleries.snapshot()
    assert isinstance(index, ShortlistIndex) and index.gallery is gallery

    predictions = classifier.classify(queries, top_k=3)
    exact, embeddings = enrolled
    reference = exact.classify(queries, top_k=1)
    found = index.nearest(embeddings, 3)
    assert isinstance(found, NearestClasses)
    # outside the shortlist a class gets 0; inside, the posteriors are renormalised over it
    assert np.allclose(found.posteriors[:, :2].sum(axis=1), 1.0, atol=1e-5)
    assert np.all(found.posteriors[:, 2] == 0)
    agree = np.mean([p.label == r.label for p, r in zip(predictions, reference)])
    assert agree >= 0.8, f"the shortlist index agrees with exact search on {agree:.0%} of the queries"

    classifier.remove(folders[0].name)
    gallery, index = classifier.galleries.snapshot()
    assert index.gallery is gallery and folders[0].name not in gallery.labels


def test_an_unknown_index_is_a_sentence_listing_the_known_ones(omniglot_artifact):
    with pytest.raises(UserError, match=r"index: unknown gallery index 'hnsw-nope'; available: .*exact"):
        FewShotClassifier.load(omniglot_artifact, backend="onnxruntime", index="hnsw-nope")


def test_the_hnsw_index_finds_what_exact_search_finds_on_real_embeddings(omniglot_artifact, data_root):
    """20 Omniglot characters enrolled from 5 drawings each, 15 queries each: faiss HNSW's top-1
    agrees with exact search on (nearly) every query, and where its shortlist holds every
    representative its posteriors are exact search's."""
    pytest.importorskip("faiss", reason="the hnsw index is the faiss extra: pip install faiss-cpu")
    from artifact_fixtures import omniglot_class_images

    classes = omniglot_class_images(data_root, classes=20)
    exact = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime")
    hnsw = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime", index="hnsw")
    for label, images in classes:
        exact.enroll(label, images[:5])
        hnsw.enroll(label, images[:5])
    queries = [image for _, images in classes for image in images[5:]]
    embeddings = exact.embed(queries)
    want = exact.galleries.snapshot()[1].nearest(embeddings, 3)
    index = hnsw.galleries.snapshot()[1]
    # K = 1: one representative a class, enrolled one at a time: in the exact delta beside a graph built empty
    assert index.name == "hnsw" and index.graph.index.ntotal + len(index.delta_vectors) == 20
    got = index.nearest(embeddings, 3)
    agree = np.mean(got.classes[:, 0] == want.classes[:, 0])
    assert agree >= 0.95, f"top-1 agrees with exact search on {agree:.1%} of {len(queries)} queries"
    assert np.allclose(got.posteriors, want.posteriors, atol=TOLERANCE)  # shortlist 64 >= 20: exact
    predictions = hnsw.classify(queries[:5], top_k=2)  # classify goes through the index (embedding a batch of 5)
    for p, row, scores in zip(predictions, got.classes[:5, :2], got.posteriors[:5, :2]):
        assert np.allclose(p.posteriors, scores, atol=TOLERANCE)
        # the same two classes in the same order, unless their posteriors tie (either order then)
        assert p.labels == tuple(hnsw.gallery.labels[j] for j in row) or (
            abs(scores[0] - scores[1]) < TOLERANCE and set(p.labels) == {hnsw.gallery.labels[j] for j in row})


def test_hnsw_updates_on_enroll_and_remove_without_rebuilding_and_answers_as_a_rebuilt_index(omniglot_artifact,
                                                                                              data_root, monkeypatch):
    """30 characters in the graph (one full build), then 4 enrolled, 2 removed and 1 replaced: the
    graph is shared, not rebuilt, and the answers are a freshly built index's on the same gallery;
    a removed class is never answered. Past ``rebuild_fraction`` the next change builds a new graph."""
    pytest.importorskip("faiss", reason="the hnsw index is the faiss extra: pip install faiss-cpu")
    from artifact_fixtures import omniglot_class_images
    from repmet.runtime.gallery_index.hnsw import HnswIndex

    classes = omniglot_class_images(data_root, classes=36)
    hnsw = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime", index="hnsw")
    for label, images in classes[:30]:
        hnsw.enroll(label, images[:3])
    hnsw.galleries.replace(hnsw.galleries.current)  # a change the index cannot follow: a full build
    built = hnsw.galleries.snapshot()[1]
    assert built.graph.index.ntotal == 30 and len(built.delta_vectors) == 0
    for label, images in classes[30:34]:
        hnsw.enroll(label, images[:3])
    removed = [classes[0][0], classes[31][0]]  # one from the graph, one from the delta
    for label in removed:
        hnsw.remove(label)
    hnsw.enroll(classes[5][0], classes[5][1][10:13])  # replaced: its graph vector is ignored from now on
    gallery, index = hnsw.galleries.snapshot()
    assert index.graph is built.graph, "the graph is shared, not rebuilt"
    assert index.ignored == {classes[0][0], classes[5][0]}
    assert sorted(index.delta_labels) == sorted([classes[5][0], classes[30][0], classes[32][0], classes[33][0]])

    queries = [image for _, images in classes[:34] for image in images[15:18]]
    embeddings = hnsw.embed(queries)
    fresh = HnswIndex(gallery, index.head)
    got, want = index.nearest(embeddings, 3), fresh.nearest(embeddings, 3)
    assert np.allclose(got.posteriors, want.posteriors, atol=TOLERANCE)  # 32 classes: every one in the shortlist
    ties = np.isclose(want.posteriors[:, 0], want.posteriors[:, 1], atol=TOLERANCE)
    assert np.all((got.classes[:, 0] == want.classes[:, 0]) | ties)
    answered = {gallery.labels[c] for c in got.classes.reshape(-1) if c >= 0}
    assert answered and not answered & set(removed)

    monkeypatch.setattr(HnswIndex, "rebuild_minimum", 1)  # 10% of 30 = 3 representatives: exceeded now
    hnsw.enroll(classes[34][0], classes[34][1][:3])
    rebuilt = hnsw.galleries.snapshot()[1]
    assert rebuilt.graph is not built.graph and rebuilt.graph.index.ntotal == len(hnsw.labels)
    assert not rebuilt.ignored and not rebuilt.delta_labels


def test_auto_searches_exactly_below_its_threshold_and_switches_to_hnsw_above_it(omniglot_artifact, data_root,
                                                                               tmp_path, monkeypatch):
    pytest.importorskip("faiss", reason="the hnsw index is the faiss extra: pip install faiss-cpu")
    from artifact_fixtures import omniglot_class_images
    from repmet.runtime.gallery_index.auto import AutoIndex

    monkeypatch.setattr(AutoIndex, "threshold", 12)
    classifier = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime")  # index="auto", the default
    classes = omniglot_class_images(data_root, classes=14)
    for label, images in classes[:11]:
        classifier.enroll(label, images[:1])
    index = classifier.galleries.snapshot()[1]
    assert index.name == "auto" and index.chosen.name == "exact"
    for label, images in classes[11:]:
        classifier.enroll(label, images[:1])
    index = classifier.galleries.snapshot()[1]
    hnsw = index.chosen  # built when the 12th class arrived; the 13th and 14th went to its exact delta
    assert hnsw.name == "hnsw" and hnsw.graph.index.ntotal == 12 and len(hnsw.delta_vectors) == 2
    exact = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime", index="exact")
    exact.load_gallery(classifier.save_gallery(tmp_path / "gallery.npz"))
    queries = [images[5] for _, images in classes]
    assert [p.label for p in classifier.classify(queries)] == [p.label for p in exact.classify(queries)]
    for label, _ in classes[:3]:
        classifier.remove(label)
    assert classifier.galleries.snapshot()[1].chosen.name == "exact"  # 11 < 12 again


@pytest.fixture
def hnsw_gallery(omniglot_artifact, data_root, tmp_path):
    """30 characters in a built graph (K = 1: the mean of 2 drawings each), 3 more enrolled and 1 removed
    since, saved with the graph beside."""
    pytest.importorskip("faiss", reason="the hnsw index is the faiss extra: pip install faiss-cpu")
    from artifact_fixtures import omniglot_class_images

    classes = omniglot_class_images(data_root, classes=33)
    classifier = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime", index="hnsw")
    for label, images in classes[:30]:
        classifier.enroll(label, images[:2])
    classifier.galleries.replace(classifier.galleries.current)  # one full build
    for label, images in classes[30:]:
        classifier.enroll(label, images[:2])
    classifier.remove(classes[1][0])
    path = classifier.save_gallery(tmp_path / "mine.npz")
    queries = [images[7] for _, images in classes]
    return classifier, path, classifier.embed(queries)


def test_a_saved_hnsw_graph_is_read_back_not_rebuilt_and_answers_the_same(hnsw_gallery, omniglot_artifact,
                                                                        monkeypatch):
    from repmet.runtime.gallery_index.hnsw import HnswIndex

    classifier, path, embeddings = hnsw_gallery
    assert (path.parent / "mine.hnsw.npz").is_file()

    def no_building(*args, **kwargs):
        raise AssertionError("the graph was rebuilt")

    loaded = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime", index="hnsw")  # an empty graph
    monkeypatch.setattr(HnswIndex, "__init__", no_building)
    loaded.load_gallery(path)
    index, before = loaded.galleries.snapshot()[1], classifier.galleries.snapshot()[1]
    assert index.graph.index.ntotal == before.graph.index.ntotal == 30  # K = 1: a representative a class
    assert index.delta_labels == before.delta_labels and len(index.delta_labels) == 3
    got, want = index.nearest(embeddings, 3), before.nearest(embeddings, 3)
    assert np.array_equal(got.classes, want.classes) and np.allclose(got.posteriors, want.posteriors, atol=1e-6)


@pytest.mark.parametrize("damage", ["truncated", "neighbour_out_of_range", "wrong_metric", "foreign", "huge"])
def test_a_damaged_or_foreign_graph_file_is_not_used_and_the_graph_is_rebuilt(hnsw_gallery, omniglot_artifact,
                                                                             data_root, damage):
    from artifact_fixtures import omniglot_class_images

    classifier, path, embeddings = hnsw_gallery
    graph = path.parent / "mine.hnsw.npz"
    arrays = dict(np.load(graph, allow_pickle=False))
    if damage == "truncated":
        graph.write_bytes(graph.read_bytes()[:1000])
    elif damage == "neighbour_out_of_range":
        arrays["links"][5] = 10**6
        np.savez(graph, **arrays)
    elif damage == "wrong_metric":
        arrays["metric"] = np.array("ip")
        np.savez(graph, **arrays)
    elif damage == "foreign":  # the graph of other characters' drawings, beside this gallery
        other = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime", index="hnsw")
        for label, images in omniglot_class_images(data_root, classes=33):
            other.enroll(label, images[10:12])
        other.galleries.replace(other.galleries.current)
        other.save_gallery(path.parent / "other.npz")
        (path.parent / "other.hnsw.npz").replace(graph)
    elif damage == "huge":  # declares more vectors than this gallery could ever have had
        arrays["vectors"] = np.zeros((10**5, arrays["vectors"].shape[1]), np.float32)
        np.savez(graph, **arrays)
    loaded = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime", index="hnsw")
    loaded.load_gallery(path)
    index = loaded.galleries.snapshot()[1]
    assert index.graph.index.ntotal == len(loaded.labels) and not index.delta_labels, "rebuilt from the gallery"
    want = classifier.galleries.snapshot()[1].nearest(embeddings, 3)
    got = index.nearest(embeddings, 3)
    assert np.allclose(got.posteriors, want.posteriors, atol=TOLERANCE)


def test_hnsw_maps_followed_change_by_change_equal_the_maps_recomputed(omniglot_artifact, data_root):
    """30 random enrolls, replacements and removals on a built graph: after each, the maps the index
    updated in place (no loop over the classes) equal the ones recomputed from the whole gallery."""
    pytest.importorskip("faiss", reason="the hnsw index is the faiss extra: pip install faiss-cpu")
    import copy
    import random

    from artifact_fixtures import omniglot_class_images

    classes = omniglot_class_images(data_root, classes=30)
    classifier = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime", index="hnsw")
    for label, images in classes[:20]:
        classifier.enroll(label, images[:1])
    classifier.galleries.replace(classifier.galleries.current)
    rng = random.Random(0)
    for step in range(30):
        label, images = rng.choice(classes)
        if label in classifier.labels and rng.random() < 0.5:
            classifier.remove(label)
        else:
            classifier.enroll(label, images[rng.randrange(20):][:1])
        index = classifier.galleries.snapshot()[1]
        reference = copy.copy(index)
        reference._snapshot_maps()
        assert np.array_equal(index.graph_to_class, reference.graph_to_class), step
        ours = sorted(zip(index.delta_owner.tolist(), map(tuple, index.delta_vectors.tolist())))
        theirs = sorted(zip(reference.delta_owner.tolist(), map(tuple, reference.delta_vectors.tolist())))
        assert ours == theirs, step
