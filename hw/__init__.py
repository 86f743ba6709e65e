"""tessera.hw"""
