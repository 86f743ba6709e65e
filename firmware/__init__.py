"""tessera.firmware"""
