"""Data and code versions: what each run read and the code that defined it, kept by content.

`store.py` is a content-addressed object store under the run root (`RootLayout.objects_dir`);
`manifest.py` describes a data version (the input files, their span) and a code version (the
pipeline's source files) as objects in it; `record.py` keeps both at each `beamline run` and
names them on the run's MLMD context; `log.py` reads them back per pipeline (`beamline data
log`) and `checkout.py` writes a version's files out again (`beamline data checkout`).
"""
