"""The documentation site holds to the code: the settings reference names exactly the environment
variables `kirim/settings/` and `gunicorn.conf.py` read, the error reference has a row for exactly
the error codes the apps define and the entries of `meta/errors.py`'s mapping, and the site,
built with warnings as errors, loads nothing from elsewhere."""

import ast
import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from core.errors import ApiError
from meta.errors import BY_KIRIM_CODE

BASE_DIR = Path(settings.BASE_DIR)
DOCS = BASE_DIR / "docs"
PRODUCTION_PACKAGES = ("kirim", "core", "meta", "orgs", "outbox", "inbox", "receipts")
ENVIRONMENT_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
SETTINGS_MODULES = sorted((BASE_DIR / "kirim" / "settings").glob("*.py"))


def table_under(page, heading):
    """The rows of the first table after `heading` on a docs page, each a list of its cells, without
    the header row and the code spans' backticks."""
    _, found, section = (DOCS / page).read_text().partition(f"\n{heading}\n")
    assert found, f"{page} has no heading {heading!r}"
    rows = []
    for line in section.splitlines():
        if line.startswith("|"):
            rows.append([cell.strip().strip("`") for cell in line.strip().strip("|").split("|")])
        elif rows or line.startswith("#"):
            break
    return rows[2:]


def environment_reads(*paths):
    """The environment variables modules read: `env("NAME")`, `env.<cast>("NAME")`, a function one of
    them defines called with a name (the settings' `required` and `networks`, in whichever module of
    the package), `os.environ.get`, `os.environ[...]` and `os.getenv`."""
    trees = [ast.parse(path.read_text()) for path in paths]
    own_functions = {node.name for tree in trees for node in tree.body if isinstance(node, ast.FunctionDef)}

    def reader(function):
        if isinstance(function, ast.Name):
            return function.id == "env" or function.id in own_functions
        if isinstance(function, ast.Attribute):
            return ast.unparse(function.value) == "env" or ast.unparse(function) in ("os.environ.get", "os.getenv")
        return False

    names = set()
    for node in (node for tree in trees for node in ast.walk(tree)):
        if isinstance(node, ast.Call) and reader(node.func) and node.args:
            name = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            name = node.slice
        else:
            continue
        if isinstance(name, ast.Constant) and isinstance(name.value, str) and ENVIRONMENT_NAME.fullmatch(name.value):
            names.add(name.value)
    return names


def production_modules():
    for package in PRODUCTION_PACKAGES:
        root = importlib.import_module(package)
        yield root
        for module in pkgutil.walk_packages(root.__path__, f"{package}."):
            if not re.search(r"\.(tests|migrations)(\.|$)", module.name):
                yield importlib.import_module(module.name)


def error_codes():
    """{code: (HTTP status, type)} of every ApiError of the apps: each class's own code, and the codes
    raised with a class's status and type (`InvalidRequest(..., code="invalid_json")`)."""
    modules = list(production_modules())  # imported: every ApiError subclass is defined
    classes, pending = {}, [ApiError]
    while pending:
        cls = pending.pop()
        classes[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    codes = {cls.code: (cls.status, cls.type) for cls in classes.values()}
    for module in modules:
        for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            for keyword in node.keywords:
                if name in classes and keyword.arg == "code" and isinstance(keyword.value, ast.Constant):
                    codes[keyword.value.value] = (classes[name].status, classes[name].type)
    return codes


def differences(documented, in_the_code):
    """What a page lacks and what it names that the code has not, for a message that says which."""
    return {
        "missing from the page": sorted(map(str, set(in_the_code) - set(documented))),
        "on the page, not in the code": sorted(map(str, set(documented) - set(in_the_code))),
    }


def test_the_settings_reference_names_every_setting_settings_py_reads_and_no_other():
    documented = {row[0] for row in table_under("reference/settings.md", "## Kirim's settings (`kirim/settings/`)")}
    read = environment_reads(*SETTINGS_MODULES)

    assert "SECURE_HSTS_SECONDS" in read and "WEBHOOK_ALLOWED_NETWORKS" in read  # the parser finds them
    assert documented == read, differences(documented, read)


def test_the_settings_reference_names_every_setting_gunicorn_reads_and_no_other():
    documented = {row[0] for row in table_under("reference/settings.md", "## gunicorn's settings (`gunicorn.conf.py`)")}
    read = environment_reads(BASE_DIR / "gunicorn.conf.py")

    assert "GUNICORN_THREADS" in read
    assert documented == read, differences(documented, read)


def test_the_error_reference_has_every_code_with_its_status_and_type():
    documented = {code: (int(status), kind) for status, kind, code, _ in table_under("reference/errors.md", "## Codes")}
    defined = error_codes()

    assert {"invalid_json", "phone_number_connected"} <= set(defined)  # raised with a code; defined outside kirim
    assert set(documented) == set(defined), differences(documented, defined)
    assert documented == defined


def test_the_error_reference_has_metas_code_for_each_entry_of_the_mapping():
    heading = "## Kirim's refusals in Meta's codes"
    documented = {
        (code, field) if field else code: (int(status), int(meta_code), int(subcode) if subcode else None, kind)
        for code, field, _, status, meta_code, subcode, kind in table_under("reference/errors.md", heading)
    }
    mapped = {key: (meta.http_status, meta.code, meta.subcode, meta.type) for key, meta in BY_KIRIM_CODE.items()}

    assert set(documented) == set(mapped), differences(documented, mapped)
    assert documented == mapped
    assert {key if isinstance(key, str) else key[0] for key in mapped} <= set(error_codes())


def test_the_docs_site_builds_with_no_warning_and_loads_nothing_from_elsewhere(tmp_path):
    site = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=BASE_DIR, capture_output=True, text=True, check=False,
    )  # fmt: skip

    assert build.returncode == 0, build.stderr
    pages = list(site.rglob("*.html"))
    assert len(pages) > 20
    loaded = {
        url
        for page in pages
        for url in re.findall(r'<(?:script|img|link)\b[^>]*?\b(?:src|href)="([^"]+)"', page.read_text())
    }
    elsewhere = {url for url in loaded if urlsplit(url).scheme or urlsplit(url).netloc}
    assert loaded and not elsewhere, elsewhere


def test_env_example_lists_every_setting_kirim_and_gunicorn_read_and_no_other():
    line = re.compile(r"^#? ?([A-Z][A-Z0-9_]*)=", re.MULTILINE)
    listed = line.findall((BASE_DIR / ".env.example").read_text())
    read = environment_reads(*SETTINGS_MODULES) | environment_reads(BASE_DIR / "gunicorn.conf.py")

    assert len(listed) == len(set(listed)), "a setting listed twice"
    assert set(listed) == read, differences(set(listed), read)
