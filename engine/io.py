"""Table input and output: exact reading (io_read), label headers (io_columns), safe writing (io_write).

    read_table / read_table_info   CSV (UTF-8, BOM, GBK/GB18030), XLSX, Parquet -> DataFrame
    map_columns                    label headers ('完成投资(万元)') -> field ids
    sha256_file                    fingerprint of an input
    write_atomic / write_xlsx      temp file + rename; never over an input
    to_csv_bytes / neutralise      UTF-8-BOM CSV with formula-like text defused
"""

from __future__ import annotations

from .io_columns import map_columns
from .io_read import TableInfo, read_table, read_table_info, sha256_file
from .io_write import neutralise, to_csv_bytes, write_atomic, write_xlsx

__all__ = ["TableInfo", "map_columns", "neutralise", "read_table", "read_table_info", "sha256_file",
           "to_csv_bytes", "write_atomic", "write_xlsx"]
