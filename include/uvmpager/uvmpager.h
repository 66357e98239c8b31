/* uvmpager public API. The client library arrives with the daemon. */
#ifndef UVMPAGER_H
#define UVMPAGER_H

#define UVMPAGER_VERSION_MAJOR 0
#define UVMPAGER_VERSION_MINOR 1

#endif
