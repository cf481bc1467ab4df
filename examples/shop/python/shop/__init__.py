"""A small shop on Quixote 3.8 and session3: the Python application whose /cart/ and
/account/ pages the Go gateway in ../.. serves.

    SHOP_SESSION_DIR=/var/lib/shop/sessions PYTHONPATH=python \\
        python -m quixote.server.scgi_server --factory shop.publisher.create_publisher \\
        --host 127.0.0.1 --port 4000

Modules: shop.models (the catalog, CartItem, Order), shop.auth (User, the accounts),
shop.session (ShopSession, the session class), shop.ui (the pages), shop.publisher
(create_publisher).
"""
