"""A submitted worksheet as a PDF (fpdf2): each question and its answer, the score and band of an instrument,
and the therapist's feedback."""
from __future__ import annotations

from typing import Any

from fpdf import FPDF

from handlers.documents import pdf_text
from stores.worksheets.assignments import Assignment
from stores.worksheets.worksheets import Field, Worksheet


def _answer(field: Field, value: Any) -> str:
    if value is None or value == "" or value == []:
        return "(no answer)"
    if field.type == "checkbox":
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Yjs maps give numbers back as floats
    return str(value)



def assignment_pdf(worksheet: Worksheet, assignment: Assignment, client_name: str, therapist_name: str) -> bytes:
    """The export's bytes."""
    pdf = FPDF()
    pdf.add_page()
    width = pdf.epw
    write = lambda text, height=7: pdf.multi_cell(width, height, pdf_text(text), new_x="LMARGIN", new_y="NEXT")  # noqa: E731
    pdf.set_font("Helvetica", "B", 15)
    write(worksheet.title, 9)
    pdf.set_font("Helvetica", size=10)
    submitted = assignment.submitted_at.strftime("%d %b %Y, %H:%M UTC") if assignment.submitted_at else "-"
    write(f"Client: {client_name}    Therapist: {therapist_name}    Submitted: {submitted}")
    if worksheet.description:
        write(worksheet.description)
    responses = assignment.responses or {}
    for number, field in enumerate(worksheet.fields, 1):
        pdf.set_font("Helvetica", "B", 11)
        write(f"{number}. {field.label}")
        pdf.set_font("Helvetica", size=11)
        write(_answer(field, responses.get(field.id)))
    if assignment.score is not None:
        pdf.set_font("Helvetica", "B", 11)
        score = assignment.score
        write(f"Score: {score.total} of {score.max} ({score.severity})")
    if assignment.feedback:
        pdf.set_font("Helvetica", "B", 11)
        write("Feedback")
        pdf.set_font("Helvetica", size=11)
        for note in assignment.feedback:
            write(f"- {note.text}")
    return bytes(pdf.output())
