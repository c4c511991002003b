"""A small compute-style API built the way OpenStack's nova is: a routes ``Mapper`` with
``resource()`` routes, webob ``wsgify`` controllers, JSON faults, and an ``api-paste.ini``
composing the versioned APIs from filters. Served by ``ferrogate --paste api-paste.ini``,
``pserve api-paste.ini`` or ``gunicorn --paste api-paste.ini`` alike."""
