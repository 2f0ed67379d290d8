"""SQL and the code that runs it: the pool, named queries, migrations, repositories."""
