// The cache lines one `tcpip bench connrate` cycle touches, and what a 32 KiB 8-way L1 with 64-byte
// lines (this machine's EPYC cores, and cachegrind's --D1=32768,8,64) makes of them: distinct lines
// a cycle, how many fall into each of the 64 sets, and the misses an LRU replay of the trace gives.
// A set whose lines come round once a cycle and number more than its 8 ways misses on every one of
// them, every cycle (docs/PERFORMANCE.md, "Issue 18's last gap, a third pass").
//
//   cc -O2 -o /tmp/l1-footprint scripts/l1-footprint.c
//   pc=$(nm tcpip | grep 'StackC7connect2to4from18maximumSegmentSize3nowAA12Connection' | cut -d' ' -f1)
//   valgrind --tool=lackey --trace-mem=yes --log-fd=9 ./tcpip bench connrate --count 300 9>&1 >/dev/null 2>&1 |
//     /tmp/l1-footprint $(printf %x $((0x$pc + 0x108000))) 150 300 [raw]
//
// Cycles are counted at the first instruction of `Stack.connect` (valgrind maps a PIE executable at
// 0x108000); the model counts misses from cycle START to STOP and the footprint of cycle START+1.
// With `raw` it also prints each footprint line with the instruction that first touched it
// (`FP set line pc`) and each missed line with the instruction that missed (`MISS set line pc n`),
// for `nm -n` to name.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SETS = 64, WAYS = 8, FOOTPRINT = 1 << 16, MISSES = 1 << 20 };

static uint64_t tags[SETS][WAYS], ages[SETS][WAYS], clock_;
static uint64_t footprint[FOOTPRINT], footprintPC[FOOTPRINT];
static int footprintCount;
static struct { uint64_t line, pc; long count; } misses[MISSES];
static long setMisses[SETS];

// Whether `line` was in the cache; it is afterwards (least recently used way replaced).
static int touch(uint64_t line) {
    int set = line & (SETS - 1), victim = 0;
    clock_++;
    for (int way = 0; way < WAYS; way++)
        if (tags[set][way] == line + 1) { ages[set][way] = clock_; return 1; }
    for (int way = 1; way < WAYS; way++)
        if (ages[set][way] < ages[set][victim]) victim = way;
    tags[set][victim] = line + 1;
    ages[set][victim] = clock_;
    return 0;
}

static void recordMiss(uint64_t line, uint64_t pc) {
    uint64_t slot = ((line * 0x9E3779B97F4A7C15ULL) ^ (pc * 0xC2B2AE3D27D4EB4FULL)) >> 44;
    for (;; slot = (slot + 1) & (MISSES - 1)) {
        if (misses[slot].count == 0) { misses[slot].line = line; misses[slot].pc = pc; misses[slot].count = 1; return; }
        if (misses[slot].line == line && misses[slot].pc == pc) { misses[slot].count++; return; }
    }
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: l1-footprint CONNECT_PC_HEX START STOP [raw]\n"); return 2; }
    uint64_t mark = strtoull(argv[1], 0, 16);
    long start = atol(argv[2]), stop = atol(argv[3]), cycle = 0;
    int raw = argc > 4 && strcmp(argv[4], "raw") == 0;
    char text[256];
    uint64_t pc = 0;
    while (fgets(text, sizeof text, stdin)) {
        char kind;
        uint64_t address;
        int size;
        if (text[0] == 'I') {
            if (sscanf(text + 1, "%lx,%d", &address, &size) == 2) { pc = address; if (address == mark) cycle++; }
            continue;
        }
        if (text[0] != ' ' || sscanf(text + 1, "%c %lx,%d", &kind, &address, &size) != 3) continue;
        for (uint64_t line = address >> 6; line <= (address + size - 1) >> 6; line++) {
            int hit = touch(line);
            if (cycle == start + 1 && footprintCount < FOOTPRINT) {
                int seen = 0;
                for (int i = 0; i < footprintCount && !seen; i++) seen = footprint[i] == line;
                if (!seen) { footprint[footprintCount] = line; footprintPC[footprintCount++] = pc; }
            }
            if (!hit && cycle >= start && cycle < stop && (kind == 'L' || kind == 'M')) {
                setMisses[line & (SETS - 1)]++;
                recordMiss(line, pc);
            }
        }
    }
    int perSet[SETS] = {0}, stackLines = 0, over = 0;
    long total = 0;
    for (int i = 0; i < footprintCount; i++) {
        perSet[footprint[i] & (SETS - 1)]++;
        if ((footprint[i] << 6) >= 0x1000000000ULL) stackLines++;  // valgrind's client stack sits up there
    }
    for (int set = 0; set < SETS; set++) { total += setMisses[set]; if (perSet[set] > WAYS) over++; }
    printf("cycles %ld, counted %ld..%ld\n", cycle, start, stop);
    printf("lines a cycle %d (stack %d), sets over %d ways %d, read misses a cycle %.1f\n",
           footprintCount, stackLines, WAYS, over, stop > start ? (double)total / (stop - start) : 0);
    printf("set lines/misses:");
    for (int set = 0; set < SETS; set++) if (perSet[set] > WAYS || setMisses[set] > 2 * (stop - start) / 3)
        printf(" %d:%d/%ld", set, perSet[set], setMisses[set]);
    printf("\n");
    if (raw) {
        for (int i = 0; i < footprintCount; i++)
            printf("FP %d %lx %lx\n", (int)(footprint[i] & (SETS - 1)), footprint[i] << 6, footprintPC[i]);
        for (long i = 0; i < MISSES; i++) if (misses[i].count)
            printf("MISS %d %lx %lx %ld\n", (int)(misses[i].line & (SETS - 1)), misses[i].line << 6, misses[i].pc, misses[i].count);
    }
    return 0;
}
