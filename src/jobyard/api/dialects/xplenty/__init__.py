"""The Integrate.io (Xplenty) dialect: its ETL API v2 under ``/{account_id}/api/`` over
Jobyard's core, as the published ``xplenty`` SDK speaks it (see ``docs/xplenty.md``)."""
