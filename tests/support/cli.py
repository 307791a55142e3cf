"""Running the command line in process, as the e2e tests do."""

from __future__ import annotations

from demixer.cli.main import main


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """main(argv) → (exit code, stdout, stderr). argparse errors leave by SystemExit: take its code.
    A traceback on stderr is never an answer."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err
