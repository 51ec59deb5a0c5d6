"""Bundled assessment schemes (考核办法) as kaohe scheme files."""
