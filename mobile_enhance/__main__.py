"""``python -m mobile_enhance`` runs the ``mobile-enhance`` command."""

from mobile_enhance.cli import run

if __name__ == "__main__":
    run()
