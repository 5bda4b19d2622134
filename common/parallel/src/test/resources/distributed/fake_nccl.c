/* A stand-in for libnccl.so.2 with NCCL's signatures, for testing the FFM binding on machines without a GPU:
 * each function records its arguments, which the test reads back through fake_last(). */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

typedef struct { char internal[128]; } ncclUniqueId;
typedef void *ncclComm_t;
typedef void *cudaStream_t;

static int64_t last[8];
static int the_comm;

int64_t fake_last(int i) { return last[i]; }

int ncclGetVersion(int *version) { *version = 21903; return 0; }

int ncclGetUniqueId(ncclUniqueId *id) {
    for (int i = 0; i < 128; i++) id->internal[i] = (char) (i * 3 + 1);
    return 0;
}

int ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
    int64_t sum = 0;
    for (int i = 0; i < 128; i++) sum += (unsigned char) id.internal[i] * (i + 1);
    last[0] = nranks; last[1] = rank; last[2] = sum;
    *comm = &the_comm;
    return 0;
}

int ncclAllReduce(const void *send, void *recv, size_t count, int type, int op, ncclComm_t comm, cudaStream_t stream) {
    if (count == 0) return 4; /* ncclInvalidArgument */
    last[0] = (int64_t) send; last[1] = (int64_t) recv; last[2] = (int64_t) count; last[3] = type; last[4] = op;
    last[5] = comm == &the_comm; last[6] = (int64_t) stream;
    return 0;
}

int ncclReduceScatter(const void *send, void *recv, size_t count, int type, int op, ncclComm_t comm, cudaStream_t stream) {
    last[0] = (int64_t) send; last[1] = (int64_t) recv; last[2] = (int64_t) count; last[3] = type; last[4] = op;
    last[5] = comm == &the_comm; last[6] = (int64_t) stream;
    return 0;
}

int ncclAllGather(const void *send, void *recv, size_t count, int type, ncclComm_t comm, cudaStream_t stream) {
    last[0] = (int64_t) send; last[1] = (int64_t) recv; last[2] = (int64_t) count; last[3] = type; last[4] = -1;
    last[5] = comm == &the_comm; last[6] = (int64_t) stream;
    return 0;
}

int ncclBroadcast(const void *send, void *recv, size_t count, int type, int root, ncclComm_t comm, cudaStream_t stream) {
    last[0] = (int64_t) send; last[1] = (int64_t) recv; last[2] = (int64_t) count; last[3] = type; last[4] = root;
    last[5] = comm == &the_comm; last[6] = (int64_t) stream;
    return 0;
}

static int group_depth;
int ncclGroupStart(void) { group_depth++; last[7] = group_depth; return 0; }
int ncclGroupEnd(void) { group_depth--; last[7] = group_depth; return 0; }
int ncclCommDestroy(ncclComm_t comm) { last[5] = 100 + (comm == &the_comm); return 0; }
int ncclCommAbort(ncclComm_t comm) { last[5] = 200 + (comm == &the_comm); return 0; }

const char *ncclGetErrorString(int result) {
    static char text[64];
    snprintf(text, sizeof text, "fake error %d", result);
    return text;
}
