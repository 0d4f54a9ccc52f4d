"""Spreadsheets and CSV as tables (issue #13): every row readable with its headers, the
sheet named in the citation, size limits with a clear reason. The files are written in
the test (``spreadsheets.py``); the index is the real one (FAISS, SQLite, the encoder)."""

from __future__ import annotations

import pytest

from archivist_faiss import tables
from archivist_faiss.loading import LoaderRegistry, builtin_loaders

from .spreadsheets import write_ods, write_xlsx

BUDGET = {
    "Budget": [[None, None, None], ["Name", "Amount", "Paid"], ["Ann", 40, "yes"], [None, None, None],
               ["Bob", 12.5, None]],
    "Suppliers": [["Supplier", "City"], ["Granite & Co", "Aberdeen"]],
    "Empty": [],
}


@pytest.fixture()
def registry() -> LoaderRegistry:
    return LoaderRegistry(builtin_loaders())


@pytest.mark.parametrize("write, suffix", [(write_xlsx, ".xlsx"), (write_ods, ".ods")])
def test_each_row_reads_with_its_headers_one_part_per_sheet(tmp_path, registry, write, suffix) -> None:
    result = registry.load(write(tmp_path / f"budget{suffix}", BUDGET))
    assert result.document is not None, result.reason
    parts = {p.locator.section: p.text for p in result.document.parts}
    assert list(parts) == ["Budget", "Suppliers"]  # an empty sheet gives no part
    assert parts["Budget"].split("\n\n") == [
        "Budget, columns: Name; Amount; Paid",
        "Budget, row 3: Name: Ann; Amount: 40; Paid: yes",  # the row numbers the spreadsheet shows
        "Budget, row 5: Name: Bob; Amount: 12.5\n",  # an empty cell is left out
    ]
    assert "Suppliers, row 2: Supplier: Granite & Co; City: Aberdeen" in parts["Suppliers"]
    assert result.document.metadata["sheets"] == "Budget, Suppliers"


def test_csv_and_tsv(tmp_path, registry) -> None:
    (tmp_path / "people.csv").write_text('Name;Amount;Note\nAnn;40;"two\nlines"\n"Bob; Jr";12;\n;;\n')
    (tmp_path / "people.tsv").write_text("Name\t\tAmount\nAnn\tx\t40\n")
    csv_text = registry.load(tmp_path / "people.csv").document.parts[0].text  # type: ignore[union-attr]
    assert csv_text.split("\n\n") == ["Columns: Name; Amount; Note", "Row 2: Name: Ann; Amount: 40; Note: two lines",
                                      "Row 3: Name: Bob; Jr; Amount: 12\n"]
    tsv = registry.load(tmp_path / "people.tsv").document
    assert tsv is not None and tsv.parts[0].locator.section is None
    assert "Row 2: Name: Ann; B: x; Amount: 40" in tsv.parts[0].text  # a column without a header: its letter


def test_data_that_starts_away_from_a1_keeps_its_row_numbers_and_column_letters(tmp_path, registry) -> None:
    sheet = {"S": [[None] * 4, [None] * 4, [None, "Name", None, "Amount"], [None, "Ann", "x", 40]]}
    doc = registry.load(write_xlsx(tmp_path / "offset.xlsx", sheet)).document
    assert doc is not None and "S, row 4: Name: Ann; C: x; Amount: 40" in doc.parts[0].text


def test_too_big_tables_are_skipped_with_a_clear_reason(tmp_path, registry, monkeypatch) -> None:
    monkeypatch.setattr(tables, "MAX_ROWS", 100)
    monkeypatch.setattr(tables, "MAX_CELLS", 1000)
    (tmp_path / "long.csv").write_text("a,b\n" + "1,2\n" * 150)
    result = registry.load(tmp_path / "long.csv")
    assert result.document is None and not result.transient
    assert result.reason == ("table of more than 100 rows (too big to index usefully; split it, "
                             "or export the part you ask about)")
    wide = write_xlsx(tmp_path / "wide.xlsx", {"W": [[f"c{n}" for n in range(60)]] * 20})
    result = registry.load(wide)
    assert result.document is None and result.reason is not None and "more than 1,000 cells" in result.reason
    two = write_ods(tmp_path / "two.ods", {"A": [["x"]] * 60, "B": [["y"]] * 60})  # all sheets together
    assert "more than 100 rows" in (registry.load(two).reason or "")


def test_broken_spreadsheets_say_why(tmp_path, registry) -> None:
    good = write_xlsx(tmp_path / "good.xlsx", BUDGET).read_bytes()
    (tmp_path / "cut.xlsx").write_bytes(good[: len(good) // 2])
    (tmp_path / "junk.xls").write_bytes(b"not a spreadsheet at all" * 10)
    (tmp_path / "empty.ods").write_bytes(write_ods(tmp_path / "e.ods", {"Empty": []}).read_bytes())
    for name, reason in (("cut.xlsx", "corrupt"), ("junk.xls", "corrupt or not a spreadsheet"),
                         ("empty.ods", "no text (every sheet is empty)")):
        result = registry.load(tmp_path / name)
        assert result.document is None and not result.transient, (name, result)
        assert result.reason is not None and reason in result.reason and "\n" not in result.reason


def test_a_row_is_found_and_cited_with_its_sheet(tmp_path, make_index) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_xlsx(docs / "accounts.xlsx", {
        "Invoices": [["Customer", "Amount", "Due"]] + [[f"Customer {n}", 100 + n, f"2024-0{1 + n % 9}-15"]
                                                      for n in range(30)] + [["Harbour Bakery", 4120, "2024-03-01"]],
        "Staff": [["Name", "Role"], ["Ann Lee", "treasurer"]],
    })
    (docs / "orders.csv").write_text("Order,Item,Quantity\nA-17,granite tiles,250\nA-18,oak planks,40\n")
    ix = make_index(isolate=False)
    report = ix.index([docs])
    assert not report.skipped and len(report.indexed) == 2
    hit = ix.search("How much does Harbour Bakery owe?", k=1)[0]
    assert hit.path.endswith("accounts.xlsx") and hit.section == "Invoices"
    assert "Invoices, row 32: Customer: Harbour Bakery; Amount: 4120" in hit.text
    hit = ix.search("who is the treasurer", k=1)[0]
    assert hit.section == "Staff" and "Name: Ann Lee; Role: treasurer" in hit.text
    hit = ix.search("how many granite tiles were ordered", k=1)[0]
    assert hit.path.endswith("orders.csv") and "Item: granite tiles; Quantity: 250" in hit.text


@pytest.mark.parametrize("write, suffix, part", [(write_xlsx, ".xlsx", "xl/worksheets/sheet1.xml"),
                                                 (write_ods, ".ods", "content.xml")])
def test_damaged_sheets_are_read_or_skipped_with_a_reason_never_a_crash(tmp_path, registry, write, suffix,
                                                                        part) -> None:
    import io
    import random
    import zipfile

    original = write(tmp_path / f"seed{suffix}", BUDGET).read_bytes()
    with zipfile.ZipFile(io.BytesIO(original)) as zf:
        parts = {i.filename: zf.read(i) for i in zf.infolist()}
    rng = random.Random(13)
    for n in range(40):
        xml = bytearray(parts[part])
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(xml))
            kind = rng.choice(["flip", "cut", "repeat", "insert"])
            if kind == "flip":
                xml[at] = rng.randrange(256)
            elif kind == "cut":
                del xml[at:at + rng.randint(1, 64)]
            elif kind == "repeat":
                xml[at:at] = bytes(xml[at:at + 32]) * rng.randint(2, 50)
            else:
                xml[at:at] = rng.choice([b'<row r="99999999999">', b'<c r="XFD1048576"><v>1</v></c>',
                                         b'table:number-rows-repeated="1000000000"', b"\xff\xfe", b"]]>"])
        path = tmp_path / f"m{n}{suffix}"
        with zipfile.ZipFile(path, "w") as zf:
            for name, content in parts.items():
                zf.writestr(name, bytes(xml) if name == part else content)
        result = registry.load(path)
        if result.document is None:
            assert result.reason and "\n" not in result.reason and not result.transient, (n, result.reason)
