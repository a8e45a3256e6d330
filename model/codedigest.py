"""The code a cell ran, as one digest per source file (env.json's `code`).

A file's digest covers its tokens without comments, blank lines and docstrings
(any statement that is only a string literal): those cannot change what a cell
computes, so editing them must not make its results stale. Everything else, down
to one changed number or operator, changes the digest. Tokens, not bytes and not
the AST: `ast.dump` differs between Python versions, and the same file must digest
the same in the Python 3.6 images and in the harness (an f-string, one token before
3.12 and several after, is taken whole from the source).

The trainer records the files it imported (model/ and, for `impl: author`, the
authors' code) when it starts; the harness digests the same files now and names
those that differ. Python 3.6 compatible, no torch.
"""
import hashlib
import io
import os
import sys
import tokenize

__all__ = ["file_digest", "source_digest", "imported_code", "AUTHOR_PREFIX"]

AUTHOR_PREFIX = "author:"   # env.json code keys of the authors' files: author:unsup3d/model.py
_DROPPED = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)   # Python >= 3.12 splits f-strings
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)
_STATEMENT_START = {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}


def file_digest(path):
    """source_digest of a file; None when it cannot be read or tokenized."""
    try:
        with open(path, "rb") as f:
            return source_digest(f.read())
    except (OSError, SyntaxError, tokenize.TokenError, UnicodeDecodeError):
        return None


def source_digest(source):
    """16 hex digits of sha256 over the significant tokens of Python source (bytes)."""
    digest = hashlib.sha256()
    for kind, text in _without_docstrings(_tokens(source)):
        digest.update(("%s %s\n" % (kind, text)).encode("utf-8"))
    return digest.hexdigest()[:16]


def imported_code(project_root, author_root=None):
    """{file key: digest} for every module imported now from model/ (and the authors' code).

    Keys are paths relative to the project ("model/step.py"), or AUTHOR_PREFIX plus the
    path relative to the authors' checkout, so that a copy elsewhere digests the same.
    """
    roots = [(os.path.join(os.path.abspath(project_root), "model"), os.path.abspath(project_root), "")]
    if author_root:
        roots.append((os.path.abspath(author_root), os.path.abspath(author_root), AUTHOR_PREFIX))
    code = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py"):
            continue
        path = os.path.abspath(path)
        for folder, base, prefix in roots:
            if path.startswith(folder + os.sep):
                code[prefix + os.path.relpath(path, base).replace(os.sep, "/")] = file_digest(path)
                break
    return dict(sorted(code.items()))


def _tokens(source):
    """(kind, text) of every significant token; an f-string is one STRING however it tokenizes."""
    lines = source.decode(tokenize.detect_encoding(io.BytesIO(source).readline)[0]).splitlines(True)
    out, depth, start = [], 0, None
    for tok in tokenize.tokenize(io.BytesIO(source).readline):
        if _FSTRING_START is not None and tok.type in (_FSTRING_START, _FSTRING_END):
            depth += 1 if tok.type == _FSTRING_START else -1
            if tok.type == _FSTRING_START and depth == 1:
                start = tok.start
            elif depth == 0:
                out.append(("STRING", _span(lines, start, tok.end)))
            continue
        if depth or tok.type in _DROPPED:
            continue
        # INDENT's text is the indentation itself; NEWLINE's is \n, \r\n or '' at the end
        text = "" if tok.type in _STATEMENT_START else tok.string
        out.append((_kind(tok.type), text))
    return out


def _kind(token_type):
    # 3.6 tokenizes async/await as their own types; later versions as NAME
    name = tokenize.tok_name[token_type]
    return "NAME" if name in ("ASYNC", "AWAIT") else name


def _span(lines, start, end):
    """The source text between two tokenize positions ((row from 1, column))."""
    (row0, col0), (row1, col1) = start, end
    if row0 == row1:
        return lines[row0 - 1][col0:col1]
    return lines[row0 - 1][col0:] + "".join(lines[row0:row1 - 1]) + lines[row1 - 1][:col1]


def _without_docstrings(tokens):
    """Drop statements that are only string literals (docstrings, and no-op strings like them)."""
    out, i = [], 0
    starts = set(tokenize.tok_name[t] for t in _STATEMENT_START)
    while i < len(tokens):
        at_start = not out or out[-1][0] in starts
        j = i
        while j < len(tokens) and tokens[j][0] == "STRING":
            j += 1
        if at_start and j > i and j < len(tokens) and tokens[j][0] == "NEWLINE":
            i = j + 1
            continue
        out.append(tokens[i])
        i += 1
    return out
