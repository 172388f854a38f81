"""Passages around quotes: the ranked chunk that holds them, else a word-aligned window; quotes
of one passage share it; the pieces always join back to the document text."""

from rag.highlight import passage_span, passages
from rag.types import Chunk, Citation, Document, Hit

TEXT = "Cats sleep a lot. A house cat sleeps about fifteen hours. Cats hunt at dawn."
DOC = Document(id="cats", title="Notes on Cats", text=TEXT)
OTHER = Document(id="dogs", title="Dogs", text=TEXT)
QUOTE = "A house cat sleeps about fifteen hours."
START = TEXT.index(QUOTE)
HUNT = TEXT.index("Cats hunt")


def cite(n: int = 1, start: int = START, end: int = START + len(QUOTE), document: Document = DOC) -> Citation:
    return Citation(n=n, document=document, quote=document.text[start:end], start=start, end=end)


def hit(doc_id: str, start: int, end: int) -> Hit:
    return Hit(chunk=Chunk(id=f"{doc_id}:{start}", doc_id=doc_id, text=TEXT[start:end], start=start, end=end),
               score=1.0, rank=1)


def joined(passage) -> str:
    return "".join(text for text, _ in passage.pieces())


def test_the_passage_is_the_ranked_chunk_holding_the_quote():
    [passage] = passages([cite()], [hit("dogs", 0, len(TEXT)), hit("cats", 0, HUNT - 1)])
    assert (passage.start, passage.end) == (0, HUNT - 1)
    assert passage.pieces() == [("Cats sleep a lot. ", None), (QUOTE, cite())]
    assert not passage.clipped_start and passage.clipped_end


def test_a_chunk_that_only_overlaps_the_quote_is_not_the_passage():
    assert passage_span(DOC, START, START + len(QUOTE), [hit("cats", 0, START + 5)], context=10) == (11, 67)


def test_without_a_chunk_the_window_is_cut_at_word_boundaries():
    [passage] = passages([cite()], context=10)
    assert passage.pieces() == [("a lot. ", None), (QUOTE, cite()), (" Cats hunt", None)]
    assert joined(passage) == TEXT[passage.start:passage.end]
    assert passage.clipped_start and passage.clipped_end


def test_a_window_reaching_the_document_edges_is_not_clipped():
    [passage] = passages([cite()], context=1000)
    assert (passage.start, passage.end) == (0, len(TEXT)) and joined(passage) == TEXT
    assert not passage.clipped_start and not passage.clipped_end


def test_a_window_with_no_space_in_reach_keeps_only_the_quote():
    [passage] = passages([cite()], context=3)  # "t. " before and " Ca" after: both cut a word
    assert passage.pieces() == [(QUOTE, cite())]


def test_a_window_ending_at_a_word_boundary_keeps_that_word():
    [passage] = passages([cite()], context=5)  # " Cats" ends exactly at the window's edge
    assert passage.pieces()[-1] == (" Cats", None)


def test_quotes_in_one_chunk_share_a_passage_in_document_order():
    later, earlier = cite(1, HUNT, len(TEXT)), cite(2)
    [passage] = passages([later, earlier], [hit("cats", 0, len(TEXT))])
    assert passage.citations == (earlier, later)
    assert passage.pieces() == [("Cats sleep a lot. ", None), (QUOTE, earlier), (" ", None),
                                ("Cats hunt at dawn.", later)]


def test_quotes_of_other_documents_or_chunks_get_their_own_passages_ordered_by_number():
    hits = [hit("cats", 0, 18), hit("cats", 18, len(TEXT)), hit("dogs", 0, len(TEXT))]
    found = passages([cite(3, 0, 17), cite(1), cite(2, document=OTHER)], hits)
    assert [(p.document.id, p.start, p.end, [c.n for c in p.citations]) for p in found] == [
        ("cats", 18, len(TEXT), [1]), ("dogs", 0, len(TEXT), [2]), ("cats", 0, 18, [3])]


def test_overlapping_quotes_never_repeat_text():
    first, second = cite(1, 0, 30), cite(2, 18, 57)
    [passage] = passages([first, second], [hit("cats", 0, len(TEXT))])
    assert passage.pieces() == [(TEXT[0:30], first), (TEXT[30:57], second), (TEXT[57:], None)]
    assert joined(passage) == TEXT
