
/*
 * Redis Cluster's key slots: CRC16 (XMODEM) of the key, or of its hash tag
 * (the part between the first "{" and the next "}", when not empty),
 * modulo 16384.  Plain C, no nginx types.
 */


#ifndef _NGX_DEVICE_AUTH_SLOT_H_INCLUDED_
#define _NGX_DEVICE_AUTH_SLOT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_DEVICE_AUTH_SLOTS  16384


uint16_t ngx_device_auth_crc16(const void *buf, size_t len);
int ngx_device_auth_slot(const void *key, size_t len);


#endif /* _NGX_DEVICE_AUTH_SLOT_H_INCLUDED_ */
