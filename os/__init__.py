"""tessera.os"""
